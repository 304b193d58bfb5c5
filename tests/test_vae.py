"""The VAE assignment: its checks on fixed inputs (in this process, no worker), and whole notebooks graded through
the worker: the solution, the release, every catalogued mistake written as a real wrong answer cell (each diagnosed
by name), hidden checks that say nothing of their inputs, and bad input."""

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
    finding_kinds,
    graded,
    notebook,
    probe_and_judge,
    run_cells,
    with_answer,
    with_code,
)

from autograder import checks
from autograder.checks import CheckFailed
from autograder.checks.quality.digits import CLASSIFIER_REPORT, sample_metrics
from autograder.checks.quality.vae import VAEQuality
from autograder.checks.sampler import (
    SamplerGradients,
    SamplerLimit,
    SamplerRandomness,
    SamplerStatistics,
    shares_noise_across_dimensions,
)
from autograder.checks.vae_loss import VAELossProperties, VAELossValue
from autograder.errors import KitError

ASSIGNMENT = "vae"
SOLUTION = ROOT / "solutions" / "vae" / "vae.ipynb"
RELEASE = ROOT / "release" / "vae" / "vae.ipynb"
MISTAKES = catalogue("vae")
FULL = {
    "sampling_shape": 1,
    "sampling_statistics": 2,
    "sampling_gradients": 2,
    "sampling_noise": 2,
    "vae_loss_values": 4,
    "vae_loss_batch": 2,
    "vae_quality": 6,
}
SAMPLING_CELLS = ("sampling_shape", "sampling_statistics", "sampling_gradients", "sampling_noise")
LOSS_CELLS = ("vae_loss_values", "vae_loss_batch")

# The cpu profile's training (calibration refuses a recipe whose reference does not beat the trivial baselines by
# far), measured on fewer held-out digits and prior samples. The classifier settings are the committed
# classifier's, so calibration reuses it instead of training one (test_classifier_is_trained_... trains one).
# conftest's assignment_course, assignment_grader, checks_only and ns fixtures use ASSIGNMENT and PROFILE.
PROFILE = {
    "train_images": 5000,
    "test_images": 500,
    "epochs": 1,
    "batch_size": 16,
    "learning_rate": 0.003,
    "latent_dim": 16,
    "filters": [8, 16],
    "wall_s": 180,
    "extra": {"beta": 1.0, "prior_samples": 500, "confidence": 0.9, "classifier_images": 60000, "classifier_epochs": 2},
}


# --------------------------------------------------------------------------------------- checks, without a worker


def sampler(ns: dict, body: str):
    """A Sampling class whose call() is `body` (z_mean, z_log_var in scope), as a student might write it."""
    code = (
        "class Sampling(layers.Layer):\n"
        "    def __init__(self, seed=None, **kwargs):\n"
        "        super().__init__(**kwargs)\n"
        "        self.seed_generator = keras.random.SeedGenerator(seed)\n\n"
        "    def call(self, inputs):\n"
        "        z_mean, z_log_var = inputs\n" + "".join(f"        {line}\n" for line in body.splitlines())
    )
    return with_code(ns, code, "Sampling")


# Correct samplers written otherwise than the reference: they must pass every sampler check.
OTHER_CORRECT_SAMPLERS = {
    "batch_and_dim": "batch, dim = ops.shape(z_mean)[0], ops.shape(z_mean)[1]\n"
    "epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)\n"
    "return z_mean + ops.exp(z_log_var / 2) * epsilon",
    "sqrt_of_variance": "epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)\n"
    "return z_mean + ops.sqrt(ops.exp(z_log_var)) * epsilon",
    "mean_and_stddev_arguments": "return keras.random.normal(ops.shape(z_mean), mean=z_mean, "
    "stddev=ops.exp(0.5 * z_log_var), seed=self.seed_generator)",
}
SAMPLER_CALLS = [
    ("sampler_statistics", dict(latent_dim=3, draws=20000, seed=0)),
    ("sampler_statistics", dict(latent_dim=5, draws=20000, seed=3)),
    ("sampler_gradients", dict(batch_size=8, latent_dim=2, seed=0)),
    ("sampler_gradients", dict(batch_size=5, latent_dim=4, seed=4)),
    ("sampler_limit", dict(batch_size=4, latent_dim=3, seed=0)),
    ("sampler_randomness", dict(batch_size=16, latent_dim=2, seed=0)),
    ("sampler_shape", dict(batch_size=7, latent_dim=3, seed=1)),
]


@pytest.mark.parametrize("variant", sorted(OTHER_CORRECT_SAMPLERS))
def test_correct_samplers_written_otherwise_pass_every_sampler_check(ns, variant):
    mine = sampler(ns, OTHER_CORRECT_SAMPLERS[variant])
    for name, args in SAMPLER_CALLS:
        check = checks.get(name)
        verdict = check.judge(check.probe(mine, **args), check.probe(ns["Sampling"], **args), hidden=False)
        assert verdict.passed, f"{variant}, {name}: {verdict.message}"


def test_statistics_tolerance_follows_the_number_of_draws_and_holds_across_seeds(ns):
    check = SamplerStatistics()
    tol_mean, tol_std = check.tolerances(20000)
    assert tol_mean == pytest.approx(5 * np.sqrt(2 / 20000)) and tol_std == pytest.approx(5 / np.sqrt(20000))
    assert check.tolerances(80000)[1] == pytest.approx(tol_std / 2)  # four times the draws, half the tolerance
    # An independent correct sampler (another seed: other draws) passes on every seed tried.
    for seed in range(4):
        ref = check.probe(ns["Sampling"], latent_dim=4, draws=20000, seed=seed)
        other = check.probe(
            sampler(ns, OTHER_CORRECT_SAMPLERS["batch_and_dim"]), latent_dim=4, draws=20000, seed=seed + 100
        )
        assert check.judge(other, ref, hidden=False).passed
    # A standard deviation 10% too large is caught at 20,000 draws, with the numbers in the message.
    wide = sampler(
        ns,
        "epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)\n"
        "return z_mean + 1.1 * ops.exp(0.5 * z_log_var) * epsilon",
    )
    verdict = check.judge(
        check.probe(wide, latent_dim=3, draws=20000, seed=0),
        check.probe(ns["Sampling"], latent_dim=3, draws=20000, seed=0),
        hidden=False,
    )
    assert not verdict.passed and "1.1" in verdict.message and "+-0.035" in verdict.message


def test_gradients_are_measured_against_the_reparameterization(ns):
    check = SamplerGradients()
    ref = check.probe(ns["Sampling"], batch_size=8, latent_dim=2, seed=0)
    ref = check.summary(ref)
    assert ref["dz_dmean"] == pytest.approx(1.0, abs=1e-6)
    assert ref["dz_dlogvar_per_noise"] == pytest.approx(0.5, abs=1e-6)
    assert ref["elementwise"] and ref["z_depends_on_log_var"]
    detached = check.probe(
        with_code(ns, MISTAKES["log_var_detached"].code, "Sampling"), batch_size=8, latent_dim=2, seed=0
    )
    verdict = check.judge(detached, ref, hidden=False)
    assert not verdict.passed and "no gradient reaches z_log_var" in verdict.message
    assert check.summary(detached)["dz_dmean"] == pytest.approx(1.0, abs=1e-6)
    nothing = check.probe(
        with_code(ns, MISTAKES["no_reparameterization"].code, "Sampling"), batch_size=8, latent_dim=2, seed=0
    )
    nothing = check.summary(nothing)
    assert nothing["dz_dmean"] == 0.0 and nothing["dz_dlogvar_per_noise"] == 0.0


def test_limit_and_randomness_checks(ns):
    limit, randomness = SamplerLimit(), SamplerRandomness()
    ref = limit.probe(ns["Sampling"], batch_size=4, latent_dim=3, seed=0)
    assert limit.summary(ref)["max_deviation"] <= 1e-6
    flipped = sampler(
        ns,
        "epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)\n"
        "return z_mean + ops.exp(-0.5 * z_log_var) * epsilon",
    )
    verdict = limit.judge(limit.probe(flipped, batch_size=4, latent_dim=3, seed=0), ref, hidden=False)
    assert not verdict.passed and "not finite or huge" in verdict.message
    ref = randomness.properties(randomness.probe(ns["Sampling"], batch_size=16, latent_dim=2, seed=0))
    assert ref == {
        "new_noise_each_call": True,
        "new_noise_each_example": True,
        "new_noise_each_dimension": True,
        "same_seed_same_draws": True,
    }
    fixed = randomness.properties(
        randomness.probe(with_code(ns, MISTAKES["epsilon_fixed"].code, "Sampling"), batch_size=16, latent_dim=2, seed=0)
    )
    assert fixed["new_noise_each_call"] is False and fixed["same_seed_same_draws"] is True


def test_one_epsilon_shared_by_the_latent_dimensions_is_caught_by_randomness_alone(ns):
    """Each dimension of z alone is right (its mean, its spread, its gradients): only the correlation between the
    dimensions shows the shared epsilon, and it is measured in the grader from the raw draws."""
    shared = with_code(ns, MISTAKES["epsilon_shared_by_dimensions"].code, "Sampling")
    failing = []
    for name, args in SAMPLER_CALLS + [("sampler_randomness", dict(batch_size=9, latent_dim=4, seed=6))]:
        check = checks.get(name)
        verdict = check.judge(check.probe(shared, **args), check.probe(ns["Sampling"], **args), hidden=False)
        if not verdict.passed:
            failing.append(name)
            assert "share one epsilon" in verdict.message, verdict.message
    assert set(failing) == {"sampler_randomness"}
    randomness = SamplerRandomness()
    raw = randomness.probe(shared, batch_size=16, latent_dim=2, seed=0)
    assert set(raw) == {"first", "second", "again", "args"}  # raw draws and the call: the property is computed here
    assert randomness.properties(raw)["new_noise_each_dimension"] is False


def test_shared_noise_is_read_from_the_correlation_of_the_draws():
    rng = np.random.default_rng(0)
    eps = rng.standard_normal((16, 1))
    scales, means = np.array([0.5, 2.0, 1.3]), np.array([1.0, -2.0, 0.3])
    assert shares_noise_across_dimensions(means + scales * eps)
    assert not shares_noise_across_dimensions(means + scales * rng.standard_normal((16, 3)))
    # No noise across the examples (another property's fault) and a single dimension tell nothing.
    assert not shares_noise_across_dimensions(np.tile(means, (16, 1)))
    assert not shares_noise_across_dimensions(means[:1] + eps)
    # Independent draws of 9 examples never come near: the hidden check's batch.
    assert not any(shares_noise_across_dimensions(rng.standard_normal((9, 4))) for _ in range(2000))


def test_the_public_checks_literal_expectation_without_the_dimensions_still_judges(ns):
    randomness = SamplerRandomness()
    literal = {"new_noise_each_call": True, "new_noise_each_example": True, "same_seed_same_draws": True}
    args = dict(batch_size=16, latent_dim=2, seed=0)
    assert randomness.judge(randomness.probe(ns["Sampling"], **args), literal, hidden=False).passed
    shared = with_code(ns, MISTAKES["epsilon_shared_by_dimensions"].code, "Sampling")
    assert not randomness.judge(randomness.probe(shared, **args), literal, hidden=False).passed


def test_sampler_messages_say_what_the_draws_show_not_a_guess_at_why(ns):
    # Noise left where the variance vanishes, from an answer that does scale by exp(0.5 * z_log_var) (plus a floor):
    # "scale the noise by exp(0.5 * z_log_var)" would describe the answer itself.
    floored = sampler(
        ns,
        "epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)\n"
        "return z_mean + (ops.exp(0.5 * z_log_var) + 0.01) * epsilon",
    )
    verdict = probe_and_judge("sampler_limit", floored, ns["Sampling"], batch_size=4, latent_dim=3, seed=0)
    assert not verdict.passed and "still differs from z_mean" in verdict.message
    assert "scale the noise" not in verdict.message
    # Draws that repeat from call to call, drawn inside call() with a fixed integer seed: "draw epsilon inside
    # call()" would describe the answer itself.
    fixed = with_code(ns, MISTAKES["epsilon_fixed"].code, "Sampling")
    verdict = probe_and_judge("sampler_randomness", fixed, ns["Sampling"], batch_size=16, latent_dim=2, seed=0)
    assert not verdict.passed and "give the same z" in verdict.message and "inside call()" not in verdict.message
    # Gradients cut from z as a whole, or from the standard deviation only: the gradients tell which.
    for mistake, cut in (("no_reparameterization", "z is detached"), ("log_var_detached", "deviation is detached")):
        wrong = with_code(ns, MISTAKES[mistake].code, "Sampling")
        verdict = probe_and_judge("sampler_gradients", wrong, ns["Sampling"], batch_size=8, latent_dim=2, seed=0)
        assert cut in verdict.message and "?" not in verdict.message, verdict.message


# Correct losses written otherwise than the reference (x has one channel: Keras' binary_crossentropy averages over
# the last axis, which is then a single pixel).
OTHER_CORRECT_LOSSES = {
    "keras_losses_function": """
def vae_loss(x, x_decoded, z_mean, z_log_var, beta=1.0):
    reconstruction = ops.sum(keras.losses.binary_crossentropy(x, x_decoded), axis=(1, 2))
    kl = ops.sum(-0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)), axis=-1)
    return ops.mean(reconstruction) + beta * ops.mean(kl)
""",
    "written_out": """
def vae_loss(x, x_decoded, z_mean, z_log_var, beta=1.0):
    bce = -(x * ops.log(x_decoded) + (1 - x) * ops.log(1 - x_decoded))
    reconstruction = ops.sum(ops.reshape(bce, (ops.shape(x)[0], -1)), axis=1)
    kl = 0.5 * ops.sum(ops.exp(z_log_var) + ops.square(z_mean) - 1 - z_log_var, axis=1)
    return ops.mean(reconstruction + beta * kl)
""",
    "pixel_mean_times_pixels": """
def vae_loss(x, x_decoded, z_mean, z_log_var, beta=1.0):
    pixels = x.shape[1] * x.shape[2]
    reconstruction = pixels * keras.losses.BinaryCrossentropy()(x, x_decoded)
    kl = -0.5 * ops.mean(ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=1))
    return reconstruction + beta * kl
""",
}
LOSS_GRID = [
    dict(batch_size=b, image_shape=s, latent_dim=d, beta=beta, seed=seed)
    for seed, (b, s, d, beta) in enumerate(
        [
            (1, (28, 28, 1), 2, 1.0),
            (4, (28, 28, 1), 2, 0.5),
            (3, (10, 12, 1), 7, 4.0),
            (16, (7, 7, 1), 16, 2.5),
            (2, (5, 9, 1), 3, 0.1),
        ]
    )
]


@pytest.mark.parametrize("variant", sorted(OTHER_CORRECT_LOSSES))
def test_correct_losses_written_otherwise_pass_on_several_sizes_and_betas(ns, variant):
    mine = with_code(ns, OTHER_CORRECT_LOSSES[variant], "vae_loss")
    for args in LOSS_GRID:
        for check in (VAELossValue(), VAELossProperties()):
            verdict = check.judge(check.probe(mine, **args), check.probe(ns["vae_loss"], **args), hidden=False)
            assert verdict.passed, f"{variant} {args}: {verdict.message}"


def test_every_loss_mistake_fails_on_every_size_and_beta(ns):
    """The value check also calls the loss with beta=0 (the reconstruction term alone), so even the mistakes that
    agree with the reference at beta=1 (beta ignored, beta on the reconstruction) fail everywhere. A batch of one
    example is the one place where a sum over the batch is its mean."""
    value = VAELossValue()
    for mistake in (m for m in MISTAKES.values() if m.grade_id == "vae_loss"):
        wrong = with_code(ns, mistake.code, "vae_loss")
        passed = [
            args["batch_size"]
            for args in LOSS_GRID
            if value.judge(value.probe(wrong, **args), value.probe(ns["vae_loss"], **args), hidden=False).passed
        ]
        assert passed == ([1] if "summed_over_batch" in mistake.id else []), f"{mistake.id} passes on {passed}"


def test_loss_messages_separate_reconstruction_and_kl(ns):
    check = VAELossValue()
    args = dict(batch_size=4, image_shape=(28, 28, 1), latent_dim=2, beta=1.0, seed=0)
    ref = check.probe(ns["vae_loss"], **args)
    got = check.probe(with_code(ns, MISTAKES["kl_missing_half"].code, "vae_loss"), **args)
    verdict = check.judge(got, ref, hidden=False)
    assert "reconstruction term 744.301 (expected 744.301)" in verdict.message
    assert "KL term 8.57" in verdict.message and "(expected 4.285" in verdict.message
    hidden = check.judge(got, ref, hidden=True)
    assert "reconstruction term (your loss with beta=0) is right" in hidden.message
    assert "the KL term ((loss - reconstruction) / beta) is wrong" in hidden.message
    assert "744" not in hidden.message and "4.28" not in hidden.message


def test_sample_metrics_cap_each_digit_class():
    class OneDigit:  # a classifier that reads every image as a confident 8
        def predict(self, images, **_):
            p = np.full((len(images), 10), 0.001)
            p[:, 8] = 0.991
            return p

    got = sample_metrics(np.zeros((200, 28, 28, 1)), OneDigit(), confidence=0.9)
    assert got == {"sample_recognizable": pytest.approx(0.15), "sample_classes": pytest.approx(1.0)}


def test_quality_baselines_and_refusals(tmp_path):
    import keras
    from keras import layers

    check = VAEQuality()
    rng = np.random.default_rng(0)
    x = (rng.random((50, 28, 28, 1)) < 0.2).astype("float32")
    with pytest.raises(KitError, match="sample baselines are not in .*run `autograder calibrate vae`"):
        check.baselines({"x": x}, assets=tmp_path)
    samples = {"sample_recognizable": {"noise": 0.05}, "sample_classes": {"noise": 1.5}}
    (tmp_path / CLASSIFIER_REPORT).write_text(json.dumps({"sample_baselines": samples}))
    base = check.baselines({"x": x}, assets=tmp_path)
    assert base["sample_classes"] == {"noise": 1.5}
    assert base["kl"]["image_information"] == pytest.approx(784 * (-(0.2 * np.log(0.2) + 0.8 * np.log(0.8))), rel=0.1)
    assert base["reconstruction_mse"]["all_zeros"] == pytest.approx(float(np.mean(x**2)))
    # an encoder with one output (a plain autoencoder's) is refused with a sentence
    inputs = keras.Input((28, 28, 1))
    code = layers.Dense(16)(layers.Flatten()(inputs))
    keras.Model(inputs, code).save(tmp_path / "encoder.keras")
    z = keras.Input((16,))
    keras.Model(z, layers.Reshape((28, 28, 1))(layers.Dense(784, activation="sigmoid")(z))).save(
        tmp_path / "decoder.keras"
    )
    np.savez(tmp_path / "test.npz", x=x, y=np.zeros(50, "int64"))
    with pytest.raises(ValueError, match="two outputs, z_mean and z_log_var"):
        check.evaluate(tmp_path, data=tmp_path / "test.npz", recipe={"latent_dim": 16, "extra": {}}, assets=tmp_path)


# --------------------------------------------------------------------------------------- on every Keras backend
# The gradient helper (autograder/checks/gradients.py) differentiates the sampling layer on whichever backend runs.
# Each installed backend runs the same script: in this process for the backend it already runs, in a fresh Python
# for the others (Keras picks its backend once per process); a backend that is not installed is skipped.

GRADIENT_FACTS = """
import numpy as np
import keras
from keras import layers, ops

from autograder.checks.gradients import input_gradients
from autograder.checks.sampler import latent_inputs


def sampling(body):
    ns = {"keras": keras, "layers": layers, "ops": ops}
    exec("class Sampling(layers.Layer):\\n"
         "    def __init__(self, seed=None, **kwargs):\\n"
         "        super().__init__(**kwargs)\\n"
         "        self.seed_generator = keras.random.SeedGenerator(seed)\\n"
         "    def call(self, inputs):\\n"
         "        z_mean, z_log_var = inputs\\n" + "".join("        " + line + "\\n" for line in body), ns)
    return ns["Sampling"]


def facts():
    zm, lv = latent_inputs(6, 3, 0)
    tensors = [ops.convert_to_tensor(zm), ops.convert_to_tensor(lv)]
    draw = "eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)"
    kinds = {"reference": [draw, "return z_mean + ops.exp(0.5 * z_log_var) * eps"],
             "std_detached": [draw, "return z_mean + ops.stop_gradient(ops.exp(0.5 * z_log_var)) * eps"],
             "all_detached": [draw, "return ops.stop_gradient(z_mean + ops.exp(0.5 * z_log_var) * eps)"],
             "unseeded": ["eps = keras.random.normal(ops.shape(z_mean))",
                          "return z_mean + ops.exp(0.5 * z_log_var) * eps"]}
    out = {}
    for name, body in kinds.items():
        layer = sampling(body)(seed=0)
        z, (d_mean, d_log_var) = input_gradients(layer, [zm, lv])
        after = ops.convert_to_numpy(layer(tensors))
        out[name] = {"shape": list(z.shape), "d_mean": sorted(set(np.round(d_mean, 6).ravel().tolist())),
                     "d_log_var_error": float(np.max(np.abs(d_log_var - 0.5 * (z - zm)))),
                     "d_log_var_max": float(np.max(np.abs(d_log_var))), "advances": bool(np.any(after != z))}
    first = ops.convert_to_numpy(sampling(kinds["reference"])(seed=0)(tensors))
    out["first_draw"] = bool(np.allclose(input_gradients(sampling(kinds["reference"])(seed=0), [zm, lv])[0], first))
    dense = layers.Dense(4)  # a layer with weights, not built yet: d sum(x W + b) / dx is the row sums of W
    _, (dx,) = input_gradients(dense, [zm], call=lambda layer, xs: layer(xs[0]))
    out["dense_error"] = float(np.max(np.abs(dx - ops.convert_to_numpy(dense.kernel).sum(axis=1)[None])))
    return out
"""


def _gradient_facts(backend: str) -> dict:
    import importlib.util
    import os
    import subprocess
    import sys

    import keras

    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    if backend == keras.backend.backend():
        ns: dict = {}
        exec(GRADIENT_FACTS, ns)
        return ns["facts"]()
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    code = GRADIENT_FACTS + "\nimport json\nprint('FACTS', json.dumps(facts()))\n"
    run = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    line = next(x for x in run.stdout.splitlines() if x.startswith("FACTS "))
    return json.loads(line[len("FACTS ") :])


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_input_gradients_are_the_same_on_every_installed_backend(backend):
    facts = _gradient_facts(backend)
    ref, std, none, unseeded = (facts[k] for k in ("reference", "std_detached", "all_detached", "unseeded"))
    # z = z_mean + exp(0.5 v) eps: dz/dz_mean = 1 and dz/dv = 0.5 (z - z_mean); the layer's generator moves on
    assert ref["shape"] == [6, 3] and ref["d_mean"] == [1.0] and ref["d_log_var_error"] < 1e-5 and ref["advances"]
    assert facts["first_draw"]  # the helper's call is the layer's first: building it spends no draw
    # where stop_gradient cuts the path, zeros (TensorFlow says None, PyTorch builds no graph at all)
    assert std["d_mean"] == [1.0] and std["d_log_var_max"] == 0.0
    assert none["d_mean"] == [0.0] and none["d_log_var_max"] == 0.0
    # a draw without a seed is differentiated too (inside a JAX trace Keras refuses it without the helper's stand-in)
    assert unseeded["d_mean"] == [1.0] and unseeded["d_log_var_error"] < 1e-5 and unseeded["advances"]
    assert facts["dense_error"] < 1e-5


# --------------------------------------------------------------------------------------- in the student's kernel


def test_public_checks_in_the_students_kernel():
    """The release's test cells, run as Jupyter would: they pass on the solution, fail on the stubs and on a
    mistake with got and expected."""
    ns = {}
    run_cells(notebook(SOLUTION), ns, {"setup", "answer"})
    run_cells(notebook(RELEASE), ns, {"test"})
    exec(MISTAKES["kl_mean_over_latent"].code, ns)
    with pytest.raises(CheckFailed, match=r"got loss 746.444, expected 748.587"):
        exec("".join(cell(notebook(RELEASE), "vae_loss_values")["source"]), ns)
    stubs = {}
    run_cells(notebook(RELEASE), stubs, {"setup", "answer"})
    with pytest.raises(NotImplementedError):
        exec("".join(cell(notebook(RELEASE), "sampling_shape")["source"]), stubs)


def test_self_check_of_the_vae_notebooks():
    assert_self_check(SOLUTION, RELEASE)


# --------------------------------------------------------------------------------------- whole notebooks, graded


def test_the_solution_gets_full_marks(assignment_grader):
    result = graded(assignment_grader, SOLUTION)
    assert result["score"] == result["max_score"] == sum(FULL.values())
    assert all(t["status"] == "passed" for t in result["tests"]), [t["output"] for t in result["tests"]]
    assert result["extra_data"]["findings"] == []
    quality = next(t for t in result["tests"] if t["extra_data"]["check"] == "vae_quality")
    metrics = quality["extra_data"]["metrics"]
    assert 0 < metrics["reconstruction_mse"] < 0.04 and 1 < metrics["kl"] < 60
    assert metrics["sample_recognizable"] > 0.2 and metrics["sample_classes"] > 6


def test_the_untouched_release_gets_zero_and_says_why(assignment_grader):
    result = graded(assignment_grader, RELEASE)
    assert result["score"] == 0 and result["max_score"] == sum(FULL.values())
    assert all(t["status"] == "failed" for t in result["tests"])
    text = " ".join(t["output"] for t in result["tests"])
    assert "not implemented yet" in text and "\x1b" not in text  # Keras' wrapping and colour codes removed


def test_every_catalogued_mistake_differs_from_the_solution(checks_only):
    expected = checks_only.prepare()
    for mistake in MISTAKES.values():
        differs = any(
            not expected.mistake(mistake, call).ok
            or not checks.get(call.check)
            .judge(expected.mistake(mistake, call).value, expected.reference(call).value, hidden=False)
            .passed
            for call in checks_only.spec.calls
        )
        assert differs, f"catalogue entry {mistake.id} behaves like the solution"


# Each catalogued mistake graded alone (diagnosed as itself and nothing else): tests/test_variants.py, for every
# assignment.


# Whole notebooks: one per loss mistake, each with a sampling mistake beside it (the two answer cells have separate
# checks). The default run grades three of them, which between them fail every kind of check; -m slow grades all.
_SAMPLING = sorted(m.id for m in MISTAKES.values() if m.grade_id == "sampling")
_LOSS = sorted(m.id for m in MISTAKES.values() if m.grade_id == "vae_loss")
assert len(_LOSS) >= len(_SAMPLING)
_DEFAULT = {
    ("epsilon_shared_by_batch", "kl_sign_flipped"),
    ("log_var_detached", "loss_not_reduced"),
    ("epsilon_unseeded", "loss_summed_over_batch"),
}
_pairs = [(_SAMPLING[i] if i < len(_SAMPLING) else None, loss) for i, loss in enumerate(_LOSS)]
_pairs = sorted(_DEFAULT) + [
    (None if s in {d[0] for d in _DEFAULT} else s, loss) for s, loss in _pairs if loss not in {d[1] for d in _DEFAULT}
]
_pairs += [(s, None) for s in _SAMPLING if s not in {p[0] for p in _pairs}]
PAIRS = [
    pytest.param(s, loss, id=f"{s}+{loss}", marks=() if (s, loss) in _DEFAULT else pytest.mark.slow)
    for s, loss in _pairs
]


@pytest.mark.parametrize("sampling_mistake, loss_mistake", PAIRS)
def test_catalogued_mistakes_in_a_submitted_notebook_are_diagnosed_by_name(
    checks_only, tmp_path, sampling_mistake, loss_mistake
):
    path = tmp_path / "wrong.ipynb"
    path.write_text(json.dumps(notebook(SOLUTION)))
    for mistake in filter(None, (sampling_mistake, loss_mistake)):
        with_answer(path, path, MISTAKES[mistake].grade_id, MISTAKES[mistake].code)
    result = graded(checks_only, path)
    scores = by_grade_id(result)
    for gid, wrong in ((SAMPLING_CELLS, sampling_mistake), (LOSS_CELLS, loss_mistake)):
        lost = sum(FULL[g] - scores[g] for g in gid)
        assert (lost > 1e-3) == bool(wrong), (gid, scores)
    for mistake in filter(None, (sampling_mistake, loss_mistake)):
        m = MISTAKES[mistake]
        failed = [
            t
            for t in result["tests"]
            if t["status"] == "failed"
            and t["extra_data"]["grade_id"] in (SAMPLING_CELLS if m.grade_id == "sampling" else LOSS_CELLS)
        ]
        diagnoses = {t["extra_data"].get("diagnosis") for t in failed}
        assert m.says in diagnoses and diagnoses <= {m.says, None}, f"{mistake}: {diagnoses}"


HIDDEN_SECRETS = (
    "(7, 3)",
    "(1, 5)",
    "(10, 12",
    "(7, 7",
    "(9, 9",
    "latent_dim=6",
    "latent_dim=16",
    "beta=0.5",
    "beta=2.5",
    "beta=3",
    "(5,)",
    "(3,)",
    "(8,)",
    "(6, 2)",
    "(9, 4)",
    "(5, 4)",
)


def test_hidden_checks_never_show_hidden_inputs_or_expectations(checks_only, tmp_path):
    path = with_answer(SOLUTION, tmp_path / "a.ipynb", "vae_loss", MISTAKES["loss_not_reduced"].code)
    path = with_answer(path, path, "sampling", MISTAKES["noise_not_scaled"].code)
    result = graded(checks_only, path)
    hidden = [t for t in result["tests"] if t["extra_data"]["hidden"]]
    assert all(t["status"] == "failed" for t in hidden if t["extra_data"]["grade_id"] in LOSS_CELLS)
    assert {t["extra_data"]["grade_id"] for t in hidden if t["status"] == "failed"} >= {
        "sampling_statistics",
        "sampling_gradients",
        "sampling_noise",
        *LOSS_CELLS,
    }
    text = " ".join(t["output"] for t in hidden)
    expected = checks_only.prepare()
    values = [
        f"{v:.6g}"
        for call in checks_only.spec.calls
        if call.hidden and call.check == "vae_loss_value"
        for v in (
            float(expected.reference(call).value["value"]),
            float(expected.reference(call).value["reconstruction"]),
        )
    ]
    for secret in HIDDEN_SECRETS + tuple(values) + ("expected",):
        assert secret not in text, secret
    # the same mistake on a public check says what it got and what was expected
    public = [t for t in result["tests"] if t["name"].startswith("sampling_noise") and not t["extra_data"]["hidden"]]
    assert "still differs from z_mean by up to" in public[0]["output"]


def test_not_json_and_wrong_version_complete_with_a_finding(checks_only, tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text("{not json")
    result = graded(checks_only, path)
    assert result["score"] == 0 and finding_kinds(result) == {"not_json"}
    assert len(result["tests"]) == len(checks_only.spec.calls)
    nb = notebook(SOLUTION)
    nb["nbformat"] = 3
    path.write_text(json.dumps(nb))
    assert finding_kinds(graded(checks_only, path)) == {"wrong_format_version"}


def test_missing_sampling_cell_costs_only_its_checks_and_the_quality(assignment_grader, tmp_path):
    nb = notebook(SOLUTION)
    nb["cells"].remove(cell(nb, "sampling"))
    path = tmp_path / "missing.ipynb"
    path.write_text(json.dumps(nb))
    result = graded(assignment_grader, path)
    scores = by_grade_id(result)
    assert all(scores[g] == 0 for g in SAMPLING_CELLS) and scores["vae_quality"] == 0
    assert all(scores[g] == pytest.approx(FULL[g], abs=1e-3) for g in LOSS_CELLS)
    assert "missing_answer_cell" in finding_kinds(result)
    assert any("Sampling is not defined" in t["output"] for t in result["tests"])


def test_edited_locked_test_cell_is_reported_and_ignored(checks_only, tmp_path):
    nb = notebook(SOLUTION)
    cell(nb, "vae_loss_values")["source"] = "print('all good')\n"
    cell(nb, "vae_loss_values")["metadata"]["nbgrader"]["points"] = 50
    path = tmp_path / "edited.ipynb"
    path.write_text(json.dumps(nb))
    result = graded(checks_only, path)
    assert by_grade_id(result)["vae_loss_values"] == FULL["vae_loss_values"]  # graded from the source
    assert {"locked_cell_edited", "cell_metadata_changed"} <= finding_kinds(result)


@pytest.mark.parametrize(
    "case, code, reason",
    [
        pytest.param("infinite_loop", "while True:\n    pass\n", "time limit", marks=pytest.mark.slow),
        ("os_exit", "import os\nos._exit(0)\n", "stopped the worker"),
    ],
)
def test_hostile_loss_cell_costs_only_the_loss(checks_only, tmp_path, case, code, reason):
    src = "".join(cell(notebook(SOLUTION), "vae_loss")["source"])
    result = graded(checks_only, with_answer(SOLUTION, tmp_path / f"{case}.ipynb", "vae_loss", code + src))
    scores = by_grade_id(result)
    assert all(scores[g] == pytest.approx(FULL[g], abs=1e-3) for g in SAMPLING_CELLS), scores
    assert all(scores[g] == 0 for g in LOSS_CELLS)
    assert reason in " ".join(f["message"] for f in result["extra_data"]["findings"])


def test_calibration_reuses_the_committed_classifier(assignment_course):
    report = json.loads((assignment_course.root / "reference_weights" / "vae" / "digit_classifier.json").read_text())
    committed = json.loads((ROOT / "reference_weights" / "vae" / "digit_classifier.json").read_text())
    assert report["settings"] == committed["settings"]
    assert (assignment_course.root / "reference_weights" / "vae" / "digit_classifier.keras").read_bytes() == (
        ROOT / "reference_weights" / "vae" / "digit_classifier.keras"
    ).read_bytes()
    assert report["accuracy_sharp"] >= 0.95
    base = report["sample_baselines"]
    assert base["sample_recognizable"]["independent_pixels"] <= 0.15 and max(base["sample_classes"].values()) < 3


@pytest.mark.slow
def test_classifier_is_trained_when_its_settings_change(tmp_path):
    from autograder.checks.quality.digits import CLASSIFIER, CLASSIFIER_REPORT
    from autograder.grading.data import quality_subset

    test = quality_subset("mnist", "test", n=1000, seed=0, data={})
    recipe = {"extra": {"prior_samples": 200, "classifier_images": 20000, "classifier_epochs": 1}}
    check = VAEQuality()
    written = check.train_assets(tmp_path, train={}, test=test, recipe=recipe, seed=0)
    assert written == [tmp_path / CLASSIFIER, tmp_path / CLASSIFIER_REPORT]
    report = json.loads((tmp_path / CLASSIFIER_REPORT).read_text())
    assert report["settings"]["classifier_images"] == 20000 and report["accuracy_sharp"] >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("mistake", ["reconstruction_mean_over_pixels", "kl_sign_flipped"])
def test_loss_mistakes_also_cost_quality_after_training(assignment_grader, tmp_path, mistake):
    """Trained on a wrong loss, the VAE collapses to the mean digit (reconstruction averaged over pixels) or pushes
    its codes away from the prior (KL sign flipped): the quality check loses points too."""
    m = MISTAKES[mistake]
    result = graded(assignment_grader, with_answer(SOLUTION, tmp_path / "q.ipynb", m.grade_id, m.code))
    assert by_grade_id(result)["vae_quality"] < FULL["vae_quality"] / 2
