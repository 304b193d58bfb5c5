"""The denoising assignment: its checks on fixed inputs (in this process, no worker), the quality check's measure,
the notebooks in the student's kernel, and whole notebooks graded through the worker, on TensorFlow and JAX.

The default run trains nothing: it grades with the committed thresholds (no calibration), leaves the training check
out or grades notebooks whose training fails at once (the release). The tests that train are marked slow. Every
catalogue entry (mistakes.yaml and variants.yaml) is also graded by tests/test_variants.py, as for every assignment.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import (
    ROOT,
    assert_self_check,
    by_grade_id,
    catalogue,
    cell,
    copy_course,
    graded,
    notebook,
    probe_and_judge,
    run_cells,
    with_answer,
    with_code,
    without_quality,
)

from autograder import checks
from autograder.checks import CheckFailed
from autograder.checks.noise import NoiseRange, NoiseStatistics
from autograder.checks.quality.denoising import NOISE_STD, DenoisingQuality, mean_psnr, noisy_copy
from autograder.checks.sparsity import activations
from autograder.mistakes import load_variants

ASSIGNMENT = "denoising"  # conftest's `ns` fixture: the source solution's functions
SOURCE = ROOT / "source" / "denoising" / "denoising.ipynb"
SOLUTION = ROOT / "solutions" / "denoising" / "denoising.ipynb"
RELEASE = ROOT / "release" / "denoising" / "denoising.ipynb"
MISTAKES = catalogue("denoising")
VARIANTS = {v.id: v for v in load_variants(ROOT, "denoising")}
FULL = {
    "noise_statistics": 2,
    "noise_range": 2,
    "noise_randomness": 2,
    "transposed_block_shapes": 2,
    "transposed_block_structure": 3,
    "sparsity_values": 3,
    "sparsity_limits": 2,
    "sparsity_gradient": 2,
    "denoising_quality": 4,
}
CELLS = {
    "noise": ("noise_statistics", "noise_range", "noise_randomness"),
    "transposed_block": ("transposed_block_shapes", "transposed_block_structure"),
    "sparsity": ("sparsity_values", "sparsity_limits", "sparsity_gradient"),
}


@pytest.fixture(scope="module")
def denoising_grader(tmp_path_factory):
    """A grader of a copy of the course, with the committed thresholds of the cpu profile."""
    from autograder.config import load_course
    from autograder.grading import Grader

    root = copy_course(tmp_path_factory.mktemp("denoising-course"), assignments=("denoising",))
    return Grader.create(load_course(root), "denoising", profile="cpu")


@pytest.fixture(scope="module")
def checks_grader(denoising_grader):
    return without_quality(denoising_grader)


# --------------------------------------------------------------------------------------- the noise checks


def test_noise_statistics_tolerance_follows_the_draws_and_holds_across_seeds(ns):
    check = NoiseStatistics()
    tol_mean, tol_std = check.tolerances(50176)
    assert tol_mean == pytest.approx(5 * np.sqrt(2 / 50176)) and tol_std == pytest.approx(5 / np.sqrt(50176))
    # A correct noise with other draws (another seed) passes against the reference, seed after seed.
    other = with_code(ns, VARIANTS["noise_random_state"].code, "add_noise")
    args = dict(n_images=64, image_shape=(28, 28, 1), noise_std=0.1)
    for seed in range(4):
        ref = check.probe(ns["add_noise"], **args, seed=seed)
        assert check.judge(check.probe(other, **args, seed=seed + 100), ref, hidden=False).passed
    # A standard deviation 5% too large is caught, with the numbers in the message.
    wide = with_code(
        ns,
        "def add_noise(images, noise_std, seed):\n"
        "    rng = np.random.default_rng(seed)\n"
        "    return np.clip(images + 1.05 * noise_std * rng.standard_normal(images.shape), 0, 1)\n",
        "add_noise",
    )
    verdict = check.judge(check.probe(wide, **args, seed=0), check.probe(ns["add_noise"], **args, seed=0), hidden=False)
    assert not verdict.passed and "standard deviation is 1.05" in verdict.message and "+-0.022" in verdict.message


def test_noise_range_tells_clipping_from_rescaling(ns):
    args = dict(n_images=32, image_shape=(28, 28, 1), noise_std=0.5, seed=0)
    ref = NoiseRange().summary(NoiseRange().probe(ns["add_noise"], **args))
    assert ref["in_range"] and abs(ref["black_at_zero"] - 0.5) < 0.02 and abs(ref["white_at_one"] - 0.5) < 0.02
    not_clipped = with_code(ns, MISTAKES["noise_not_clipped"].code, "add_noise")
    verdict = probe_and_judge("noise_range", not_clipped, ns["add_noise"], **args)
    assert not verdict.passed and "the noisy values run from -" in verdict.message
    rescaled = with_code(ns, MISTAKES["noise_rescaled_not_clipped"].code, "add_noise")
    verdict = probe_and_judge("noise_range", rescaled, ns["add_noise"], **args)
    assert not verdict.passed and "not by clipping" in verdict.message


def test_noise_randomness_names_what_is_shared(ns):
    args = dict(n_images=16, image_shape=(28, 28, 1), noise_std=0.1, seed=0)
    check = checks.get("noise_randomness")
    assert all(check.properties(check.probe(ns["add_noise"], **args)).values())
    facts = {
        m: check.properties(check.probe(with_code(ns, MISTAKES[m].code, "add_noise"), **args))
        for m in (
            "noise_same_for_every_image",
            "noise_one_value_per_image",
            "noise_unseeded",
            "noise_seed_ignored",
            "noise_added_in_place",
        )
    }
    assert [k for k, v in facts["noise_same_for_every_image"].items() if not v] == ["new_noise_each_image"]
    assert [k for k, v in facts["noise_one_value_per_image"].items() if not v] == ["new_noise_each_pixel"]
    assert [k for k, v in facts["noise_unseeded"].items() if not v] == ["same_seed_same_noise"]
    assert [k for k, v in facts["noise_seed_ignored"].items() if not v] == ["new_seed_new_noise"]
    assert [k for k, v in facts["noise_added_in_place"].items() if not v] == ["images_unchanged"]


# --------------------------------------------------------------------------------------- the sparsity checks


def _kl(rho: float, rho_hat: np.ndarray) -> np.ndarray:
    return rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat))


@pytest.mark.parametrize("batch_size, units, rho, seed", [(8, 5, 0.05, 0), (16, 10, 0.1, 1), (7, 12, 0.2, 2)])
def test_the_reference_penalty_and_gradient_are_the_formula(ns, batch_size, units, rho, seed):
    """The source solution against the formula in float64 NumPy: the value, and the gradient with respect to each
    activation, (1 / batch) (-rho / rho_hat + (1 - rho) / (1 - rho_hat))."""
    acts = activations(batch_size, units, seed).astype("float64")
    rho_hat = acts.mean(axis=0)
    assert 0.02 * 0.1 <= acts.min() and rho_hat.min() > 0.01 and rho_hat.max() < 0.6
    assert (rho_hat < rho).any() and (rho_hat > rho).any()  # units on both sides of rho
    value = checks.get("sparsity_penalty_value").probe(
        ns["sparsity_penalty"], batch_size=batch_size, units=units, rho=rho, seed=seed
    )
    assert value["value"] == pytest.approx(_kl(rho, rho_hat).sum(), rel=1e-5)
    check = checks.get("sparsity_penalty_gradient")
    grad = check.summary(check.probe(ns["sparsity_penalty"], batch_size=batch_size, units=units, rho=rho, seed=seed))
    want = (-rho / rho_hat + (1 - rho) / (1 - rho_hat)) / batch_size
    assert np.allclose(grad["per_unit"], want, rtol=1e-4)
    assert grad["follows_rho_hat_minus_rho"] and grad["same_for_each_example"]


def test_the_limits_check_names_each_broken_property(ns):
    args = dict(batch_size=6, units=6, rho=0.05)
    limits = checks.get("sparsity_penalty_limits")
    ref = limits.summary(limits.probe(ns["sparsity_penalty"], **args))
    assert (
        all(
            ref[k]
            for k in (
                "scalar",
                "zero_at_rho",
                "positive_elsewhere",
                "finite_at_edges",
                "finite_gradient_at_edges",
                "growing_to_edges",
            )
        )
        and abs(ref["at_rho"]) < 1e-6
    )
    said = {
        m: probe_and_judge(
            "sparsity_penalty_limits",
            with_code(ns, MISTAKES[m].code, "sparsity_penalty"),
            ns["sparsity_penalty"],
            **args,
        ).message
        for m in ("rho_hat_not_clipped", "kl_first_term_only", "cross_entropy_not_kl", "penalty_not_summed")
    }
    assert "not finite when a unit's mean activation is exactly 0 or 1" in said["rho_hat_not_clipped"]
    assert "not positive" in said["kl_first_term_only"]
    assert "not zero when every unit's mean activation equals rho" in said["cross_entropy_not_kl"]
    assert "not a scalar" in said["penalty_not_summed"]
    # a penalty cut off with a large epsilon stays finite but stops pushing dead units back
    cut = with_code(
        ns,
        "def sparsity_penalty(activations, rho):\n"
        "    rho_hat = ops.clip(ops.mean(activations, axis=0), 0.01, 0.99)\n"
        "    kl = rho * ops.log(rho / rho_hat) + (1 - rho) * ops.log((1 - rho) / (1 - rho_hat))\n"
        "    return ops.sum(kl)\n",
        "sparsity_penalty",
    )
    verdict = probe_and_judge("sparsity_penalty_limits", cut, ns["sparsity_penalty"], **args)
    assert not verdict.passed and "stops growing before the edges" in verdict.message


def test_the_gradient_check_says_how_the_gradient_is_wrong(ns):
    args = dict(batch_size=8, units=5, rho=0.05, seed=0)
    said = {
        m: probe_and_judge(
            "sparsity_penalty_gradient",
            with_code(ns, MISTAKES[m].code, "sparsity_penalty"),
            ns["sparsity_penalty"],
            **args,
        ).message
        for m in ("penalty_mean_over_units", "rho_hat_per_example")
    }
    assert "0.2 times the expected gradient everywhere" in said["penalty_mean_over_units"]  # 1 / 5 units
    assert "differs between the examples of a unit" in said["rho_hat_per_example"]
    numpy_penalty = with_code(
        ns,
        "def sparsity_penalty(activations, rho):\n"
        "    q = np.clip(np.mean(activations, axis=0), 1e-7, 1 - 1e-7)\n"
        "    return np.sum(rho * np.log(rho / q) + (1 - rho) * np.log((1 - rho) / (1-q)))\n",
        "sparsity_penalty",
    )
    with pytest.raises(Exception, match="not a tensor|numpy|NumPy|Cannot convert|__array__"):
        checks.get("sparsity_penalty_gradient").probe(numpy_penalty, **args)


# --------------------------------------------------------------------------------------- the quality check


def test_psnr_noise_and_the_trivial_baselines():
    clean = np.zeros((3, 4, 4, 1), dtype="float32")
    assert mean_psnr(clean + 0.1, clean) == pytest.approx(20.0)  # MSE 0.01
    assert mean_psnr(clean, clean) == pytest.approx(100.0)  # the floor of the MSE: no infinity
    from autograder.grading.data import quality_subset

    x = quality_subset("mnist", "test", n=300, seed=0, data={})["x"]
    noisy = noisy_copy(x, NOISE_STD, 2)
    assert noisy.dtype == np.float32 and noisy.min() == 0.0 and noisy.max() == 1.0
    assert np.array_equal(noisy, noisy_copy(x, NOISE_STD, 2)) and not np.array_equal(noisy, noisy_copy(x, NOISE_STD, 1))
    baselines = DenoisingQuality().baselines({"x": x}, assets=None)["test_psnr"]
    assert 10 < baselines["noisy_input"] < baselines["mean_image"] < 13  # at noise 0.4 the mean image is better


def test_the_measure_refuses_a_code_of_the_wrong_form():
    """Tiny untrained models: the right form gives a PSNR, a code of other feature maps a sentence."""
    import keras

    def models(channels: int) -> dict:
        x = keras.Input((28, 28, 1))
        encoder = keras.Model(x, keras.layers.Conv2D(channels, 3, strides=4, padding="same")(x), name="encoder")
        code = keras.Input((7, 7, channels))
        up = keras.layers.Conv2D(1, 1, activation="sigmoid")(keras.layers.UpSampling2D(4)(code))
        return {"encoder": encoder, "decoder": keras.Model(code, up, name="decoder")}

    x = np.random.default_rng(0).random((20, 28, 28, 1)).astype("float32")
    recipe = {"latent_dim": 8, "filters": [16, 32]}
    measured = DenoisingQuality().measure(models(8), x=x, y=None, recipe=recipe, settings={}, assets=None)
    assert 0 < measured["test_psnr"] < 30
    with pytest.raises(ValueError, match="the code must be 8 feature maps at 1/4 of the image's height and width"):
        DenoisingQuality().measure(models(4), x=x, y=None, recipe=recipe, settings={}, assets=None)


# --------------------------------------------------------------------------------------- the notebooks


def test_public_checks_in_the_students_kernel(capsys):
    """The release's test cells, run as Jupyter would: they pass on the solution, fail on the stubs, and on a
    mistake with what was got and what was expected."""
    ns: dict = {}
    run_cells(notebook(SOLUTION), ns, {"setup", "answer"})
    run_cells(notebook(RELEASE), ns, {"test"})
    out = capsys.readouterr().out
    assert out.count("passed:") == 9 and "scored by the autograder" in out  # every public call has expected=
    exec(MISTAKES["penalty_mean_over_units"].code, ns)
    with pytest.raises(CheckFailed, match=r"got penalty 0\.0267099, expected 0\.133549"):
        exec("".join(cell(notebook(RELEASE), "sparsity_values")["source"]), ns)
    stubs: dict = {}
    run_cells(notebook(RELEASE), stubs, {"setup", "answer"})
    for gid in ("noise_statistics", "transposed_block_shapes", "sparsity_gradient"):
        with pytest.raises(NotImplementedError):
            exec("".join(cell(notebook(RELEASE), gid)["source"]), stubs)


def test_self_check_of_the_denoising_notebooks():
    assert_self_check(SOLUTION, RELEASE)


def test_the_release_has_stubs_and_no_solutions_and_the_written_answer_is_left_open():
    release = RELEASE.read_text()
    assert "BEGIN SOLUTION" not in release and "HIDDEN TESTS" not in release
    assert "raise NotImplementedError()" in "".join(cell(notebook(RELEASE), "sparsity")["source"])
    answer = cell(notebook(RELEASE), "denoiser_answer")
    assert answer["cell_type"] == "markdown" and "".join(answer["source"]).strip() == "YOUR ANSWER HERE"
    assert answer["metadata"]["nbgrader"]["points"] == 3
    assert "Conv2DTranspose" in "".join(cell(notebook(SOLUTION), "transposed_block")["source"])
    released = {p.name for p in RELEASE.parent.iterdir()}
    assert not released & {"mistakes.yaml", "variants.yaml"}, "the catalogues stay with the instructor"
    source = notebook(SOURCE)
    assert all(not c.get("outputs") for c in source["cells"] if c["cell_type"] == "code")


# --------------------------------------------------------------------------------------- whole notebooks, graded


def test_the_untouched_release_gets_zero_and_says_why(denoising_grader):
    result = graded(denoising_grader, RELEASE)
    assert result["score"] == 0 and result["max_score"] == sum(FULL.values())
    assert all(t["status"] == "failed" for t in result["tests"])
    text = " ".join(t["output"] for t in result["tests"])
    assert "not implemented yet" in text and "\x1b" not in text


# One notebook per line: a mistake in each answer cell, so that each notebook tests three diagnoses at once. The
# default run grades three of them, covering every check; -m slow grades the rest of the catalogue.
def _notebooks() -> list:
    by_cell = {gid: sorted(m.id for m in MISTAKES.values() if m.grade_id == gid) for gid in CELLS}
    rows = max(map(len, by_cell.values()))
    groups = [tuple(ids[i] if i < len(ids) else None for ids in by_cell.values()) for i in range(rows)]
    default = {0, 1, 2}
    return [
        pytest.param(*g, id="+".join(filter(None, g)), marks=() if i in default else pytest.mark.slow)
        for i, g in enumerate(groups)
    ]


@pytest.mark.parametrize("noise_mistake, block_mistake, sparsity_mistake", _notebooks())
def test_catalogued_mistakes_in_a_submitted_notebook_are_diagnosed_by_name(
    checks_grader, tmp_path, noise_mistake, block_mistake, sparsity_mistake
):
    path = tmp_path / "wrong.ipynb"
    path.write_text(json.dumps(notebook(SOLUTION)))
    chosen = dict(zip(CELLS, (noise_mistake, block_mistake, sparsity_mistake)))
    for mistake in filter(None, chosen.values()):
        with_answer(path, path, MISTAKES[mistake].grade_id, MISTAKES[mistake].code)
    result = graded(checks_grader, path)
    scores = by_grade_id(result)
    for gid, mistake in chosen.items():
        lost = sum(FULL[g] - scores[g] for g in CELLS[gid])
        assert (lost > 1e-3) == bool(mistake), (gid, scores)
        if mistake:
            failed = [
                t for t in result["tests"] if t["status"] == "failed" and t["extra_data"]["grade_id"] in CELLS[gid]
            ]
            named = {t["extra_data"].get("diagnosis") for t in failed}
            assert MISTAKES[mistake].says in named and named <= {MISTAKES[mistake].says, None}, (mistake, named)


HIDDEN_SECRETS = (
    "(9, 13",
    "(10, 12",
    "(6, 7",
    "(3, 3, 4)",
    "(5, 9, 2)",
    "(6, 6, 4)",
    "rho=0.2",
    "rho=0.03",
    "rho=0.15",
    "rho=0.1",
    "7 x 12",
    "32 x 3",
    "4 x 9",
    "6 x 7",
    "noise_std=0.8",
    "noise_std=0.05",
)


def test_hidden_checks_never_show_hidden_inputs_or_expectations(checks_grader, tmp_path):
    path = with_answer(SOLUTION, tmp_path / "a.ipynb", "noise", MISTAKES["noise_std_as_variance"].code)
    path = with_answer(path, path, "transposed_block", MISTAKES["transposed_valid_padding"].code)
    path = with_answer(path, path, "sparsity", MISTAKES["kl_arguments_swapped"].code)
    result = graded(checks_grader, path)
    hidden = [t for t in result["tests"] if t["extra_data"]["hidden"]]
    assert {t["extra_data"]["grade_id"] for t in hidden if t["status"] == "failed"} >= {
        "noise_statistics",
        "transposed_block_shapes",
        "transposed_block_structure",
        "sparsity_values",
        "sparsity_gradient",
    }
    text = " ".join(t["output"] for t in hidden)
    expected = checks_grader.prepare()
    values = [
        f"{float(expected.reference(call).value['value']):.6g}"
        for call in checks_grader.spec.calls
        if call.hidden and call.check == "sparsity_penalty_value"
    ]
    for secret in HIDDEN_SECRETS + tuple(values) + ("expected",):
        assert secret not in text, secret


def test_a_missing_answer_cell_costs_only_its_checks(checks_grader, tmp_path):
    nb = notebook(SOLUTION)
    nb["cells"].remove(cell(nb, "sparsity"))
    path = tmp_path / "missing.ipynb"
    path.write_text(json.dumps(nb))
    scores = by_grade_id(graded(checks_grader, path))
    assert all(scores[g] == 0 for g in CELLS["sparsity"])
    assert all(
        scores[g] == pytest.approx(FULL[g], abs=1e-3) for gid in ("noise", "transposed_block") for g in CELLS[gid]
    )


@pytest.mark.slow
def test_the_solution_gets_full_marks(denoising_grader):
    result = graded(denoising_grader, SOLUTION)
    assert result["score"] == result["max_score"] == sum(FULL.values()), [t["output"] for t in result["tests"]]
    assert result["extra_data"]["findings"] == []
    quality = next(t for t in result["tests"] if t["extra_data"]["check"] == "denoising_quality")
    assert quality["extra_data"]["metrics"]["test_psnr"] > 18.5


@pytest.mark.slow
def test_a_mistake_in_the_block_costs_quality_too_and_a_mistake_in_the_noise_does_not(denoising_grader, tmp_path):
    """The quality check trains the student's decoder block on the kit's own noise: a block that cannot upsample
    costs the quality check too, while the student's add_noise is never used there, so its mistakes cost their own
    checks only."""
    path = with_answer(SOLUTION, tmp_path / "a.ipynb", "transposed_block", MISTAKES["transposed_stride_one"].code)
    path = with_answer(path, path, "noise", MISTAKES["clean_images_returned"].code)
    result = graded(denoising_grader, path)
    assert by_grade_id(result)["denoising_quality"] == 0  # its decoder gives 7 x 7 images: training fails
    path = with_answer(SOLUTION, tmp_path / "b.ipynb", "noise", MISTAKES["clean_images_returned"].code)
    scores = by_grade_id(graded(denoising_grader, path))
    assert scores["denoising_quality"] == FULL["denoising_quality"]
    assert all(scores[g] < FULL[g] for g in ("noise_statistics", "noise_range", "noise_randomness"))


# --------------------------------------------------------------------------------------- on JAX


@pytest.mark.slow
def test_under_jax_the_solution_gets_full_marks_and_the_release_zero(denoising_grader):
    pytest.importorskip("jax")
    from dataclasses import replace

    on_jax = replace(denoising_grader.with_backend("jax"), mistakes=[])
    solution, release = graded(on_jax, SOLUTION), graded(on_jax, RELEASE)
    assert solution["score"] == solution["max_score"] == sum(FULL.values()), solution["tests"]
    assert solution["extra_data"]["environment"]["backend"] == "jax"
    assert release["score"] == 0 and release["max_score"] == sum(FULL.values())


@pytest.mark.slow
def test_under_jax_every_catalogued_mistake_is_diagnosed_by_name(checks_grader):
    """The catalogue run in a JAX worker (the expectations are JAX's too), each entry scored as a student's run."""
    pytest.importorskip("jax")
    from autograder.grading import StudentRun
    from autograder.grading.plans import probe_id
    from autograder.items import STUDENT

    on_jax = checks_grader.with_backend("jax")
    expected = on_jax.prepare()
    for mistake in MISTAKES.values():
        outcomes = {probe_id(STUDENT, call): expected.mistake(mistake, call) for call in on_jax.spec.calls}
        results = on_jax.score(StudentRun(outcomes=outcomes))
        named = {r.diagnosis for r in results if not r.passed}
        assert mistake.says in named and named <= {mistake.says, None}, (mistake.id, named)
        assert {r.grade_id for r in results if not r.passed} <= set(CELLS[mistake.grade_id]), mistake.id


# --------------------------------------------------------------------------------------- advice only where shown


def test_noise_range_says_not_clipped_only_when_no_pixel_is_held_at_the_edges(ns):
    """The symptom (the shares of pixels at exactly 0 and 1 are not clipping's) without the cause (no clipping):
    an answer that clips, but adds noise of the wrong mean, is told the shares it measured, not to clip."""
    args = dict(n_images=32, image_shape=(28, 28, 1), noise_std=0.5, seed=0)
    clips_wrong_noise = with_code(
        ns,
        "def add_noise(images, noise_std, seed):\n"
        "    rng = np.random.default_rng(seed)\n"
        "    return np.clip(images + noise_std * rng.random(images.shape), 0, 1)\n",
        "add_noise",
    )
    verdict = probe_and_judge("noise_range", clips_wrong_noise, ns["add_noise"], **args)
    assert not verdict.passed and "0% of the black pixels are exactly 0" in verdict.message, verdict.message
    assert "not by clipping" not in verdict.message and "rescaled" not in verdict.message
    hidden = NoiseRange().judge(
        NoiseRange().probe(clips_wrong_noise, **args), NoiseRange().probe(ns["add_noise"], **args), hidden=True
    )
    assert "not what clipping" in hidden.message and "%" not in hidden.message
    rescaled = with_code(ns, MISTAKES["noise_rescaled_not_clipped"].code, "add_noise")
    assert "not by clipping" in probe_and_judge("noise_range", rescaled, ns["add_noise"], **args).message


def test_noise_randomness_says_what_it_saw_without_guessing_why(ns):
    args = dict(n_images=16, image_shape=(28, 28, 1), noise_std=0.1, seed=0)
    # The same noise for every image, from a generator of the full shape drawn once and broadcast: the old advice
    # ("draw the noise with the images' full shape, from one generator") would describe this very answer.
    broadcast = with_code(
        ns,
        "def add_noise(images, noise_std, seed):\n"
        "    rng = np.random.default_rng(seed)\n"
        "    noise = rng.standard_normal(images.shape) * noise_std\n"
        "    return np.clip(images + noise[:1], 0, 1)\n",
        "add_noise",
    )
    verdict = probe_and_judge("noise_randomness", broadcast, ns["add_noise"], **args)
    assert not verdict.passed and "every image gets the same noise" in verdict.message
    assert "full shape" not in verdict.message and "generator" not in verdict.message


def test_the_penalty_is_told_to_clip_with_a_small_eps_only_when_it_is_flat_at_the_edges(ns):
    """Stopping short of the edges has several causes; only a penalty that is flat there and responds further in
    shows a large eps. One that already clips with 1e-7 and fails for another reason is not told to clip."""
    args = dict(batch_size=6, units=6, rho=0.05)
    already_clips = with_code(ns, MISTAKES["rho_hat_over_units"].code, "sparsity_penalty")
    assert "1e-7" in MISTAKES["rho_hat_over_units"].code
    verdict = probe_and_judge("sparsity_penalty_limits", already_clips, ns["sparsity_penalty"], **args)
    assert not verdict.passed and "stops growing before the edges" in verdict.message
    assert "clip" not in verdict.message, verdict.message
    large_eps = with_code(
        ns,
        "def sparsity_penalty(activations, rho):\n"
        "    rho_hat = ops.clip(ops.mean(activations, axis=0), 0.01, 0.99)\n"
        "    kl = rho * ops.log(rho / rho_hat) + (1 - rho) * ops.log((1 - rho) / (1 - rho_hat))\n"
        "    return ops.sum(kl)\n",
        "sparsity_penalty",
    )
    verdict = probe_and_judge("sparsity_penalty_limits", large_eps, ns["sparsity_penalty"], **args)
    assert "flat there" in verdict.message and "small eps (1e-7, say)" in verdict.message
    # An infinite penalty is told why (a log or division meets 0), and not also that it stops growing.
    unclipped = with_code(ns, MISTAKES["rho_hat_not_clipped"].code, "sparsity_penalty")
    verdict = probe_and_judge("sparsity_penalty_limits", unclipped, ns["sparsity_penalty"], **args)
    assert "meets 0" in verdict.message and "stops growing" not in verdict.message


def test_the_penalty_checks_say_what_is_measured_and_expected_without_a_remedy(ns):
    args = dict(batch_size=6, units=6, rho=0.05)
    said = {
        m: probe_and_judge(
            "sparsity_penalty_limits",
            with_code(ns, MISTAKES[m].code, "sparsity_penalty"),
            ns["sparsity_penalty"],
            **args,
        ).message
        for m in ("kl_first_term_only", "cross_entropy_not_kl")
    }
    # A penalty negative above rho, with both terms kept but one sign flipped, would not be helped by "keep both
    # terms"; a penalty not zero at rho, by "check both terms". The messages state the KL divergence's property.
    assert "keep both terms" not in said["kl_first_term_only"] and "positive there" in said["kl_first_term_only"]
    assert "check both terms" not in said["cross_entropy_not_kl"] and "it is " in said["cross_entropy_not_kl"]
