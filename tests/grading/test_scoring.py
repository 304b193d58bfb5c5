"""Scoring is pure: points split in cents, errors on hidden inputs worded from structured fields, findings."""

from __future__ import annotations

from fractions import Fraction

import pytest

from autograder.grading.scoring import findings, hide_inputs, split_points
from autograder.items import ANSWER, PROBE, SETUP, STUDENT, ItemId
from autograder.runner import Outcome


@pytest.mark.parametrize("points,n", [(1, 3), (2, 3), (4, 7), (3, 1), (0, 2), (14, 6), (1.5, 4), (0.5, 3)])
def test_shares_add_up_exactly_and_have_two_decimals(points, n):
    shares = split_points(points, n)
    assert len(shares) == n
    assert sum(Fraction(str(s)) for s in shares) == Fraction(str(points))
    assert all(round(s, 2) == s for s in shares)
    assert max(shares) - min(shares) <= 0.01 + 1e-12


def test_one_point_over_three_checks():
    assert split_points(1, 3) == [0.34, 0.33, 0.33]


def test_error_on_a_hidden_input_keeps_only_the_kind_and_the_line():
    out = Outcome(
        False,
        error="ValueError: shape (7, 3) is wrong (line 4 of answer cell enc)",
        raised="ValueError",
        where="line 4 of answer cell enc",
    )
    assert hide_inputs(out) == "raised ValueError on a hidden input (line 4 of answer cell enc)."
    assert (
        hide_inputs(Outcome(False, error="it ran past its time limit (an endless loop?)"))
        == "it ran past its time limit (an endless loop?)"
    )


def test_findings_kinds():
    outcomes = {
        ItemId(STUDENT, ANSWER, "enc"): Outcome(False, error="NameError: x"),
        ItemId(STUDENT, SETUP, "imports"): Outcome(False, error="ImportError: keras"),
        ItemId(STUDENT, PROBE, "t/0"): Outcome(False, error="not run"),
        ItemId(STUDENT, ANSWER, "dec"): Outcome(False, error="it ran past its time limit"),
    }
    got = findings(
        outcomes,
        deaths=["Answer cell dec stopped the worker: killed."],
        killed=[ItemId(STUDENT, ANSWER, "dec")],
        sandbox_error=None,
    )
    assert [(f.kind, f.grade_id) for f in got] == [
        ("worker_stopped", None),
        ("answer_cell_error", "enc"),
        ("setup_cell_error", "imports"),
    ]
    broken = findings(outcomes, deaths=[], killed=[], sandbox_error="the grader could not set up its sandbox (x)")
    assert [f.kind for f in broken] == ["sandbox_unavailable"] and broken[0].grader_fault


def test_item_ids_round_trip_and_reject_junk():
    item = ItemId("mistake-1", PROBE, "decoder/2")
    assert ItemId.parse(str(item)) == item
    assert ItemId.parse("student|answer:enc").describe() == "Answer cell enc"
    for junk in ("student", "student|enc", "student|bogus:x", "|answer:"):
        with pytest.raises(ValueError):
            ItemId.parse(junk)


def test_a_probe_result_is_judged_with_the_arguments_of_the_call_not_those_the_worker_sends():
    """The sampler's statistics are remade in the grader from the call's arguments. A worker that ran other inputs
    (seed 7 instead of 0) and says so in its result's `args` is judged on the inputs asked for, and fails."""
    import numpy as np

    from autograder.checks import get
    from autograder.checks.sampler import latent_inputs
    from autograder.grading.scoring import judge_value
    from autograder.notebook import CheckCall

    def draws(seed: int, n: int = 4000, latent_dim: int = 3) -> dict:
        z_mean, z_log_var = latent_inputs(1, latent_dim, seed)
        noise = np.random.default_rng(seed + 100).standard_normal((n, latent_dim))
        z = z_mean + np.exp(0.5 * z_log_var) * noise
        return {"z": z.astype("float32"), "args": {"latent_dim": latent_dim, "draws": n, "seed": seed}}

    class Reference:
        def reference(self, call):
            return Outcome(True, value=draws(0))

    call = CheckCall("sampling_stats", 0, "sampler_statistics", "Sampling", {"latent_dim": 3, "draws": 4000}, False)
    honest = judge_value(call, share=1.0, name="n", student=Outcome(True, value=draws(0)), expected=Reference())
    assert honest.passed, honest.message
    other = draws(7)
    assert get("sampler_statistics").judge(other, draws(0), hidden=False).passed  # believed, it would pass
    forged = judge_value(call, share=1.0, name="n", student=Outcome(True, value=other), expected=Reference())
    assert not forged.passed and forged.score == 0 and "sample mean" in forged.message


def test_draws_of_another_shape_than_the_call_asks_fail_in_the_grader():
    """The randomness properties are judged on draws of the shape the call's arguments give, in the grader: a
    worker that skipped its own shape check and sent draws of another shape gains nothing."""
    import numpy as np

    from autograder.checks import get

    rng = np.random.default_rng(0)
    args = {"batch_size": 8, "latent_dim": 3, "seed": 0}
    honest = {k: rng.standard_normal((8, 3)) for k in ("first", "second")}
    honest["again"], honest["args"] = honest["first"].copy(), args
    sampler = get("sampler_randomness")
    assert sampler.judge(honest, honest, hidden=False).passed
    wide = {k: np.concatenate([v, v], axis=1) for k, v in honest.items() if k != "args"}
    assert not sampler.judge({**wide, "args": args}, honest, hidden=False).passed

    images = {"n_images": 4, "image_shape": [5, 5, 1], "seed": 0}
    noise = get("noise_randomness")
    grey = np.full((4, 5, 5, 1), 0.5)
    draws = {"first": grey + rng.normal(0, 0.2, grey.shape), "other": grey + rng.normal(0, 0.2, grey.shape)}
    good = {**draws, "again": draws["first"].copy(), "given": grey, "args": images}
    assert noise.judge(good, good, hidden=False).passed
    flat = {k: v.reshape(4, -1) for k, v in good.items() if k != "args"}
    from autograder.grading.scoring import safe_judge  # as the grader judges: a raw result of the wrong form fails

    assert not safe_judge(noise, {**flat, "args": images}, good, hidden=False).passed
