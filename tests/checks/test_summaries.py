"""Checks judged on summaries worked out in the grader, on plain data (no Keras): the raw outputs a probe sends are
summarised by the judge, a public check's literal `expected=` is read as the summary itself, a summary sent in
place of raw outputs is not believed, and a 0-d loss keeps its shape through plain's encoding."""

from __future__ import annotations

import numpy as np
import pytest

from autograder import plain
from autograder.checks.gan_loss import DiscriminatorLossValue
from autograder.checks.noise import GREY, NoiseRange, NoiseStatistics, _black_and_white
from autograder.checks.sampler import SamplerLimit, latent_inputs
from autograder.checks.student import as_sent

STATS_LITERAL = {"draws": 50176, "mean_offset": 0.000726078, "std_ratio": 1.00168}  # the notebook's expected=


def _noisy(std: float, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"noisy": GREY + std * rng.standard_normal((64, 28, 28, 1)), "noise_std": 0.1}


def test_noise_statistics_are_worked_out_in_the_grader_from_the_noisy_images():
    check = NoiseStatistics()
    assert check.judge(_noisy(0.1), STATS_LITERAL, hidden=False).passed
    assert check.judge(_noisy(0.1, seed=1), _noisy(0.1), hidden=True).passed
    verdict = check.judge(_noisy(0.01), STATS_LITERAL, hidden=False)  # noise_std ** 2: the variance
    assert not verdict.passed and "standard deviation is 0.1" in verdict.message


def test_a_summary_sent_in_place_of_raw_outputs_is_not_believed():
    with pytest.raises(KeyError):
        NoiseStatistics().judge(dict(STATS_LITERAL), STATS_LITERAL, hidden=False)
    with pytest.raises(KeyError):
        SamplerLimit().judge({"max_deviation": 0.0}, {"max_deviation": 0.0}, hidden=False)


def test_noise_range_remakes_the_images_and_reads_the_clipping():
    args = {"n_images": 8, "image_shape": [6, 6, 1], "seed": 3}
    images = _black_and_white(8, (6, 6, 1), 3)
    noise = np.random.default_rng(0).normal(0, 0.5, images.shape)
    clipped = {"noisy": np.clip(images + noise, 0, 1), "args": args}
    assert NoiseRange().judge(clipped, clipped, hidden=False).passed
    verdict = NoiseRange().judge({"noisy": images + noise, "args": args}, clipped, hidden=False)
    assert not verdict.passed and "clip the noisy images" in verdict.message


def test_sampler_limit_reads_the_students_draws():
    z_mean, _ = latent_inputs(4, 3, 0)
    args = {"batch_size": 4, "latent_dim": 3, "seed": 0}
    assert (
        SamplerLimit().judge({"z": z_mean.astype("float64"), "args": args}, {"max_deviation": 0.0}, hidden=False).passed
    )
    exploded = {"z": np.full(z_mean.shape, np.inf), "args": args}
    assert "not finite or huge" in SamplerLimit().judge(exploded, {"max_deviation": 0.0}, hidden=False).message


def test_a_scalar_loss_stays_a_scalar_through_plain():
    raw = {"loss": as_sent(np.asarray(0.98, dtype="float64")), "args": {"batch_size": 8}}
    literal = {"shape": [], "value": 0.98, "args": {"batch_size": 8}}
    assert DiscriminatorLossValue().judge(plain.decode(plain.encode(raw)), literal, hidden=False).passed
    one = {"loss": as_sent(np.asarray([0.98])), "args": {"batch_size": 8}}
    assert not DiscriminatorLossValue().judge(plain.decode(plain.encode(one)), literal, hidden=False).passed
