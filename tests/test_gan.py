"""The GAN assignment: its loss checks on fixed logits (in this process, no worker), the quality check's measure and
judge on the committed reference classifier (a generator collapsed to one digit scores far below the solution, and
the feedback names mode collapse), the notebook's public checks in the student's kernel, and whole notebooks graded
through the worker: the catalogued mistakes named (TensorFlow by default, JAX in the slow set), the solution's full
marks and the release's zero after the kit's real training recipe (slow).

Each catalogued mistake graded alone, and every correct variant: tests/test_variants.py, for every assignment."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import yaml
from conftest import (
    ROOT,
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
from autograder.checks import CheckFailed, Thresholds
from autograder.checks.gan_loss import GeneratorLossProperties, logits
from autograder.checks.quality.digits import CLASSIFIER, sample_metrics
from autograder.checks.quality.gan import UNTRAINED, GANQuality, gan_trainer

ASSIGNMENT = "gan"
SOLUTION = ROOT / "solutions" / "gan" / "gan.ipynb"
RELEASE = ROOT / "release" / "gan" / "gan.ipynb"
REFERENCE = ROOT / "reference_weights" / "gan"
MISTAKES = catalogue("gan")
VARIANTS = {v["id"]: v for v in yaml.safe_load((ROOT / "source" / "gan" / "variants.yaml").read_text())}
FULL = {
    "discriminator_loss_values": 3,
    "discriminator_loss_behaviour": 3,
    "generator_loss_values": 2,
    "generator_loss_behaviour": 3,
    "generator_block_shapes": 1,
    "generator_block_layers": 3,
    "gan_quality": 6,
}
LOSS_CHECKS = {
    "discriminator_loss": ("discriminator_loss_value", "discriminator_loss_properties"),
    "generator_loss": ("generator_loss_value", "generator_loss_properties"),
}
# The course's own cpu profile: the slow tests train with it and are judged by the committed thresholds.
PROFILE = yaml.safe_load((ROOT / "course.yaml").read_text())["assignments"]["gan"]["quality"]["profiles"]["cpu"]


# --------------------------------------------------------------------------------------- losses, without a worker


@pytest.mark.parametrize("variant", sorted(v for v in VARIANTS if VARIANTS[v]["grade_id"] in LOSS_CHECKS))
def test_losses_written_otherwise_pass_on_several_batches(ns, variant):
    entry = VARIANTS[variant]
    name = entry["grade_id"]
    fn = with_code(ns, entry["code"], name)
    for check in LOSS_CHECKS[name]:
        for batch_size, seed in ((1, 7), (13, 8), (64, 9)):
            verdict = probe_and_judge(check, fn, ns[name], batch_size=batch_size, seed=seed)
            assert verdict.passed, (check, batch_size, verdict.message)


@pytest.mark.parametrize(
    "mistake, check, words",
    [
        (
            "discriminator_labels_swapped",
            "discriminator_loss_properties",
            "pushes real_logits down; training must push them up",
        ),
        (
            "discriminator_log_of_sigmoid",
            "discriminator_loss_properties",
            "sure and wrong (logits of +-50, +-100 and +-120) it gives inf or NaN, inf or NaN and inf or NaN",
        ),
        ("discriminator_summed_over_batch", "discriminator_loss_properties", "summed over the batch, not averaged"),
        (
            "discriminator_logits_as_probabilities",
            "discriminator_loss_value",
            "got discriminator_loss 4.28782, expected",
        ),
        ("generator_saturating_loss", "generator_loss_properties", "the non-saturating loss keeps pushing"),
        ("generator_target_zero", "generator_loss_properties", "pushes fake_logits down"),
    ],
)
def test_each_loss_mistake_fails_with_the_message_meant(ns, mistake, check, words):
    m = MISTAKES[mistake]
    verdict = probe_and_judge(check, with_code(ns, m.code, m.grade_id), ns[m.grade_id], batch_size=8, seed=0)
    assert not verdict.passed and words in verdict.message, verdict.message


# Losses exact at +-50 that float32 breaks further out: a log of sigmoid underflows to log(0) below about -88.7, and
# exp overflows above 88.7 (softplus written as log(1 + exp(x))).
BROKEN_FURTHER_OUT = {
    "discriminator_loss": [
        "def discriminator_loss(real_logits, fake_logits):\n"
        "    return ops.mean(-ops.log(ops.sigmoid(real_logits))) + ops.mean(-ops.log(ops.sigmoid(-fake_logits)))\n",
        "def discriminator_loss(real_logits, fake_logits):\n"
        "    return ops.mean(ops.log1p(ops.exp(-real_logits))) + ops.mean(ops.log1p(ops.exp(fake_logits)))\n",
    ],
    "generator_loss": [
        "def generator_loss(fake_logits):\n    return ops.mean(-ops.log(ops.sigmoid(fake_logits)))\n",
        "def generator_loss(fake_logits):\n    return ops.mean(ops.log(1.0 + ops.exp(-fake_logits)))\n",
    ],
}


@pytest.mark.parametrize("loss, code", [(loss, code) for loss, codes in BROKEN_FURTHER_OUT.items() for code in codes])
def test_a_loss_exact_at_fifty_but_not_where_float32_breaks_fails_the_properties(ns, loss, code):
    naive = with_code(ns, code, loss)
    check = f"{loss}_properties"
    summary = checks.get(check).summary(checks.get(check).probe(naive, batch_size=8, seed=0))
    assert summary["confident_wrong"] == pytest.approx(100.0 if loss == "discriminator_loss" else 50.0, rel=1e-5)
    verdict = probe_and_judge(check, naive, ns[loss], batch_size=8, seed=0)
    assert not verdict.passed and "(logits of +-100 and +-120) it gives inf or NaN" in verdict.message
    assert "overflows there or takes the log of 0" in verdict.message, verdict.message


@pytest.mark.parametrize(
    "mistake",
    [
        "discriminator_labels_swapped",
        "discriminator_summed_over_batch",
        "discriminator_mean_of_both_batches",
        "discriminator_real_labels_smoothed",
        "generator_summed_over_batch",
        "generator_target_zero",
    ],
)
def test_a_loss_from_the_logits_wrong_otherwise_is_not_told_to_compute_it_from_the_logits(ns, mistake):
    """The symptom (wrong where the discriminator is sure) without the cause (a formula that loses exactness): each
    of these already uses from_logits=True, and is wrong on moderate logits too."""
    m = MISTAKES[mistake]
    assert "from_logits=True" in m.code
    verdict = probe_and_judge(
        f"{m.grade_id}_properties", with_code(ns, m.code, m.grade_id), ns[m.grade_id], batch_size=8
    )
    assert not verdict.passed and "where the discriminator is sure" in verdict.message, verdict.message
    assert "from_logits" not in verdict.message and "stable" not in verdict.message, verdict.message


def test_a_loss_exact_on_moderate_logits_only_is_told_it_loses_exactness(ns):
    """Logits clipped before a cross-entropy from the logits: exact within +-6, finite and wrong beyond."""
    clipped = with_code(
        ns,
        "def generator_loss(fake_logits):\n"
        "    t = ops.clip(fake_logits, -10.0, 10.0)\n"
        "    return ops.mean(ops.binary_crossentropy(ops.ones_like(t), t, from_logits=True))\n",
        "generator_loss",
    )
    verdict = probe_and_judge("generator_loss_properties", clipped, ns["generator_loss"], batch_size=8)
    assert "on the moderate logits it is exact" in verdict.message and "logits as they are" in verdict.message


def test_only_a_vanishing_gradient_is_called_saturating(ns):
    """A wrong gradient where the fakes are rejected is the saturating loss's only when it is small and of the right
    sign; summed over the batch it is large, through clipped probabilities it is none at all."""
    said = {
        m: probe_and_judge(
            "generator_loss_properties",
            with_code(ns, MISTAKES[m].code, "generator_loss"),
            ns["generator_loss"],
            batch_size=8,
        ).message
        for m in ("generator_saturating_loss", "generator_summed_over_batch", "generator_logits_as_probabilities")
    }
    assert "its gradient per example is" in said["generator_summed_over_batch"]
    assert "saturating" in said["generator_saturating_loss"]
    for m in ("generator_summed_over_batch", "generator_logits_as_probabilities"):
        assert "saturating" not in said[m] and "non-saturating" not in said[m], said[m]


def test_the_public_checks_literal_expectation_still_judges(ns):
    """A public check's `expected=` written before the far extremes were probed holds +-50 only: it still judges."""
    literal = {
        "scalar": True,
        "batch_twice_ratio": 1.0,
        "confident_right": 1.928749893e-22,
        "confident_wrong": 50.0,
        "push": {"fake_logits": "up"},
        "rejected_gradient": -0.9933072031,
    }
    check = checks.get("generator_loss_properties")
    assert check.judge(check.probe(ns["generator_loss"], batch_size=6, seed=0), literal, hidden=False).passed


def test_the_saturating_loss_has_almost_no_gradient_where_the_discriminator_rejects_the_fakes(ns):
    saturating = with_code(ns, MISTAKES["generator_saturating_loss"].code, "generator_loss")

    def probe(fn, **args):
        return GeneratorLossProperties().summary(GeneratorLossProperties().probe(fn, **args))

    assert probe(ns["generator_loss"], batch_size=4)["rejected_gradient"] == pytest.approx(-0.99331, abs=1e-4)
    assert probe(saturating, batch_size=4)["rejected_gradient"] == pytest.approx(-0.00669, abs=1e-4)


def test_logits_are_seeded_moderate_and_shaped_like_the_discriminators_output():
    real, fake = logits("discriminator_loss", 16, 3)
    again, _ = logits("discriminator_loss", 16, 3)
    assert real.shape == fake.shape == (16, 1) and np.array_equal(real, again)
    assert np.abs(np.concatenate([real, fake])).max() <= 6 and real.mean() > fake.mean()


def test_a_loss_that_is_not_a_scalar_fails_on_its_shape(ns):
    per_example = with_code(ns, "def generator_loss(l):\n    return ops.softplus(-l)\n", "generator_loss")
    for name in LOSS_CHECKS["generator_loss"]:
        verdict = probe_and_judge(name, per_example, ns["generator_loss"], batch_size=5, seed=0)
        assert not verdict.passed and "scalar" in verdict.message, verdict.message


# --------------------------------------------------------------------------------------- the quality check


@pytest.fixture(scope="module")
def classifier():
    import keras

    return keras.models.load_model(REFERENCE / CLASSIFIER, compile=False)


@pytest.fixture(scope="module")
def thresholds():
    """The cpu profile's entry of the committed thresholds.json."""
    return json.loads((REFERENCE / "thresholds.json").read_text())["profiles"]["cpu"]


@pytest.fixture(scope="module")
def test_digits():
    from autograder.data import load_mnist

    _, (x, y) = load_mnist()
    return x[:5000], y[:5000]


def test_the_judge_is_the_vae_assignments_classifier_itself():
    import hashlib

    digest = {
        a: hashlib.sha256((ROOT / "reference_weights" / a / CLASSIFIER).read_bytes()).hexdigest()
        for a in ("vae", "gan")
    }
    assert digest["gan"] == digest["vae"], "copy reference_weights/vae/digit_classifier.keras; retraining differs"


def test_the_failure_level_is_the_best_of_noise_and_the_untrained_generator(thresholds):
    untrained = json.loads((REFERENCE / "untrained_generator.json").read_text())["metrics"]
    for metric in GANQuality.metrics:
        rule = thresholds["metrics"][metric]
        assert rule["baselines"][UNTRAINED] == untrained[metric]
        assert rule["fail"] == max(rule["baselines"].values())
        assert min(rule["reference"]) > rule["threshold"] > rule["fail"]
    assert len(thresholds["seeds"]) >= 5


def test_a_generator_collapsed_to_one_digit_scores_far_below_varied_digits(classifier, thresholds, test_digits):
    """Real digits stand in for two generators: one that draws every digit, one that draws only sevens."""
    x, y = test_digits
    check, confidence = GANQuality(), PROFILE["extra"]["confidence"]
    rules = Thresholds.from_entry(thresholds, profile="cpu")  # as the grader hands them to the judge
    varied = sample_metrics(x[:1000], classifier, confidence=confidence)
    sevens = sample_metrics(x[y == 7][:1000], classifier, confidence=confidence)
    assert varied["sample_classes"] > 9 and sevens["sample_classes"] < 1.1 and sevens["sample_recognizable"] < 0.16
    full, collapsed = check.judge(varied, rules), check.judge(sevens, rules)
    assert full.passed and full.fraction == 1.0
    assert not collapsed.passed and collapsed.fraction <= 0.2, collapsed
    assert "mode collapse" in collapsed.message and "about 1.0 of the ten digits" in collapsed.message
    assert "mode collapse" not in check.judge({"sample_recognizable": 0.0, "sample_classes": 0.0}, rules).message
    rule = thresholds["metrics"]["sample_classes"]
    short = check.judge(
        {"sample_recognizable": 0.5, "sample_classes": rule["threshold"] - 0.1}, rules
    )  # a few digits short of full marks: partial credit, not collapse
    assert 0.9 < short.fraction < 1 and "mode collapse" not in short.message


def test_the_generator_must_take_the_profiles_code_and_draw_digit_sized_images(ns, classifier, test_digits):
    import keras

    generator = ns["build_generator"](8, (8, 4))
    settings = GANQuality().settings(PROFILE)
    with pytest.raises(ValueError, match="latent_dim=32"):
        GANQuality().measure(
            {"generator": generator}, x=test_digits[0], y=None, recipe=PROFILE, settings=settings, assets=REFERENCE
        )
    small = keras.Sequential([keras.Input((32,)), keras.layers.Dense(14 * 14), keras.layers.Reshape((14, 14, 1))])
    with pytest.raises(ValueError, match=r"images of shape \(14, 14, 1\), expected \(28, 28, 1\)"):
        GANQuality().measure(
            {"generator": small}, x=test_digits[0], y=None, recipe=PROFILE, settings=settings, assets=REFERENCE
        )


def test_build_gan_must_return_a_gan_with_a_generator_and_a_train_step(ns):
    gan = ns["build_gan"](latent_dim=4, filters=(4, 2))
    assert gan_trainer(gan, "build_gan") is gan
    with pytest.raises(TypeError, match="returned a Functional, not a GAN with a Keras model `generator`"):
        gan_trainer(gan.generator, "build_gan")


def test_one_training_round_runs_and_reports_both_losses(ns):
    gan = ns["build_gan"](latent_dim=4, filters=(4, 2))
    rng = np.random.default_rng(0)
    losses = gan.train_step(rng.random((8, 28, 28, 1)).astype("float32"), rng.standard_normal((8, 4)).astype("float32"))
    assert set(losses) == {"d_loss", "g_loss"} and all(np.isfinite(v) for v in losses.values())


# --------------------------------------------------------------------------------------- the notebooks


def test_public_checks_in_the_students_kernel():
    """The release's test cells, run as Jupyter would: they pass on the solution, fail on a mistake with got and
    expected, and on the stubs as not implemented."""
    ns = {}
    run_cells(notebook(SOLUTION), ns, {"setup", "answer"})
    run_cells(notebook(RELEASE), ns, {"test"}, skip=("gan_quality",))  # training: graded only
    exec(MISTAKES["generator_target_zero"].code, ns)
    with pytest.raises(CheckFailed, match=r"got generator_loss 0.341695, expected 1.70022"):
        exec("".join(cell(notebook(RELEASE), "generator_loss_values")["source"]), ns)
    stubs = {}
    run_cells(notebook(RELEASE), stubs, {"setup", "answer"})
    with pytest.raises(NotImplementedError):
        exec("".join(cell(notebook(RELEASE), "discriminator_loss_values")["source"]), stubs)


def test_the_question_is_a_manually_graded_answer_cell_without_the_model_answer_in_the_release():
    source = {
        c.grade_id: c
        for c in __import__("autograder.notebook", fromlist=["load_spec"])
        .load_spec(ROOT / "source" / "gan" / "gan.ipynb", "gan")
        .cells
    }
    assert source["discriminator_answer"].kind == "manual" and source["discriminator_answer"].points == 3
    released = "".join(cell(notebook(RELEASE), "discriminator_answer")["source"])
    assert "YOUR ANSWER HERE" in released and "mode collapse" not in released


@pytest.fixture(scope="module")
def committed_grader(tmp_path_factory):
    """The grader of a copy of the course, judged by the committed thresholds (10 seeds; a calibration in the test
    would have one seed, and its thresholds would fit that run only)."""
    from autograder.config import load_course
    from autograder.grading import Grader

    root = copy_course(tmp_path_factory.mktemp("gan-course"), assignments=("gan",))
    return Grader.create(load_course(root), "gan", profile="cpu")


@pytest.fixture(scope="module")
def uncalibrated_checks(committed_grader):
    """The same grader without its training check: no training."""
    return without_quality(committed_grader)


def _one_mistake_per_cell(mistakes: list[str], tmp_path):
    path = SOLUTION
    for i, mistake in enumerate(mistakes):
        m = MISTAKES[mistake]
        path = with_answer(path, tmp_path / f"{i}-{mistake}.ipynb", m.grade_id, m.code)
    return path


_BY_CELL = {
    gid: sorted(m.id for m in MISTAKES.values() if m.grade_id == gid)
    for gid in ("discriminator_loss", "generator_loss", "generator_block")
}
# Notebooks with one mistake in each answer cell, so that every catalogued mistake is in one of them; the first runs
# in the default set, all of them (and on JAX) in the slow set.
_ROUNDS = [[ids[i % len(ids)] for ids in _BY_CELL.values()] for i in range(max(map(len, _BY_CELL.values())))]
_PARAMS = [pytest.param(r, id="+".join(r), marks=() if i == 0 else pytest.mark.slow) for i, r in enumerate(_ROUNDS)]


def _assert_diagnosed(result: dict, mistakes: list[str]):
    diagnoses = {
        t["extra_data"]["grade_id"]: t["extra_data"].get("diagnosis")
        for t in result["tests"]
        if t["status"] == "failed" and t["extra_data"].get("diagnosis")
    }
    says = set(diagnoses.values())
    for mistake in mistakes:
        assert MISTAKES[mistake].says in says, (mistake, diagnoses)
    assert len(says) == len(set(mistakes)), diagnoses


@pytest.mark.parametrize("mistakes", _PARAMS)
def test_catalogued_mistakes_in_a_submitted_notebook_are_diagnosed_by_name(uncalibrated_checks, tmp_path, mistakes):
    result = graded(uncalibrated_checks, _one_mistake_per_cell(mistakes, tmp_path))
    _assert_diagnosed(result, mistakes)
    assert result["score"] < result["max_score"]


@pytest.mark.slow
def test_under_jax_every_catalogued_mistake_is_diagnosed_by_name(uncalibrated_checks, tmp_path):
    pytest.importorskip("jax")
    on_jax = uncalibrated_checks.with_backend("jax")
    for mistakes in _ROUNDS:
        result = graded(on_jax, _one_mistake_per_cell(mistakes, tmp_path))
        assert result["extra_data"]["environment"]["backend"] == "jax"
        _assert_diagnosed(result, mistakes)


# --------------------------------------------------------------------------------------- whole notebooks, trained


@pytest.mark.slow
def test_the_solution_gets_full_marks_and_the_release_zero(committed_grader):
    """On TensorFlow, with the committed thresholds: the solution's training is calibration's seed 0 again."""
    grader = replace(committed_grader, mistakes=[])
    solution, release = graded(grader, SOLUTION), graded(grader, RELEASE)
    _assert_full_and_zero(solution, release)
    assert solution["extra_data"]["environment"]["backend"] == "tensorflow"


@pytest.mark.slow
def test_under_jax_with_the_committed_jax_calibration_the_solution_gets_full_marks_and_the_release_zero(
    committed_grader,
):
    """A GAN's training follows another trajectory on each backend (docs/gan.md): thresholds.json holds a JAX
    calibration of the cpu profile beside TensorFlow's, and a grader on JAX judges by it, with no recalibration."""
    pytest.importorskip("jax")
    on_jax = replace(committed_grader.with_backend("jax"), mistakes=[])
    entry = json.loads(on_jax.course.paths.thresholds_file("gan").read_text())["profiles"]["cpu"]
    assert entry["backends"]["jax"]["calibrated_on"]["backend"] == "jax"
    assert on_jax.thresholds == {"metrics": entry["backends"]["jax"]["metrics"]}
    solution, release = graded(on_jax, SOLUTION), graded(on_jax, RELEASE)
    _assert_full_and_zero(solution, release)
    assert solution["extra_data"]["environment"]["backend"] == "jax"


# --------------------------------------------------------------------------------------- thresholds per backend


def _calibration(backend: str, threshold: float) -> dict:
    return {
        "calibrated_on": {"backend": backend, "backend_version": "1", "device": "cpu"},
        "metrics": {"sample_classes": {"threshold": threshold, "fail": 2.0, "higher_is_better": True}},
    }


def test_a_calibration_on_another_backend_goes_beside_the_profiles_own():
    from autograder.calibrate import owns, place_calibration
    from autograder.files import calibration

    profiles: dict = {}
    place_calibration(profiles, "cpu", _calibration("tensorflow", 5.8))
    assert owns(profiles["cpu"], "tensorflow") and not owns(profiles["cpu"], "jax")
    place_calibration(profiles, "cpu", _calibration("jax", 5.1))
    entry = profiles["cpu"]
    assert entry["metrics"]["sample_classes"]["threshold"] == 5.8  # TensorFlow's stays as it was
    assert entry["backends"]["jax"]["metrics"]["sample_classes"]["threshold"] == 5.1
    assert calibration(entry, "jax") is entry["backends"]["jax"]
    assert calibration(entry, "tensorflow") is entry and calibration(entry, "torch") is entry
    assert calibration(entry, None) is entry
    # Calibrating the profile's own backend again keeps the other backends' calibrations.
    place_calibration(profiles, "cpu", _calibration("tensorflow", 6.0))
    assert profiles["cpu"]["metrics"]["sample_classes"]["threshold"] == 6.0
    assert profiles["cpu"]["backends"]["jax"]["metrics"]["sample_classes"]["threshold"] == 5.1


def test_thresholds_are_chosen_by_the_grading_backend_and_old_files_still_load(tmp_path):
    from autograder.files import CoursePaths, profile_thresholds

    paths = CoursePaths(tmp_path)
    paths.reference_dir("gan").mkdir(parents=True)
    old = {"assignment": "gan", "profiles": {"cpu": _calibration("tensorflow", 5.8)}}
    paths.thresholds_file("gan").write_text(json.dumps(old))
    for backend in (None, "tensorflow", "jax"):  # a file without backend keys: its one calibration for all
        assert profile_thresholds(paths, "gan", "cpu", backend=backend)["metrics"]["sample_classes"]["threshold"] == 5.8
    committed = json.loads((REFERENCE / "thresholds.json").read_text())
    paths.thresholds_file("gan").write_text(json.dumps(committed))
    cpu = committed["profiles"]["cpu"]
    assert profile_thresholds(paths, "gan", "cpu", backend="tensorflow") == {"metrics": cpu["metrics"]}
    assert profile_thresholds(paths, "gan", "cpu", backend="jax") == {"metrics": cpu["backends"]["jax"]["metrics"]}
    assert (
        cpu["calibrated_on"]["backend"] == "tensorflow" and cpu["backends"]["jax"]["calibrated_on"]["backend"] == "jax"
    )


def _assert_full_and_zero(solution: dict, release: dict):
    assert solution["score"] == solution["max_score"] == sum(FULL.values()), solution["tests"]
    assert by_grade_id(solution) == FULL and solution["extra_data"]["findings"] == []
    quality = next(t for t in solution["tests"] if t["extra_data"]["check"] == "gan_quality")
    assert quality["extra_data"]["metrics"]["sample_classes"] > 4
    assert release["score"] == 0 and release["max_score"] == sum(FULL.values())
    assert all(t["status"] == "failed" for t in release["tests"])


def test_the_release_holds_no_solution_hidden_test_or_instructor_file():
    release = RELEASE.read_text()
    assert "BEGIN SOLUTION" not in release and "BEGIN HIDDEN TESTS" not in release and "### BEGIN" not in release
    assert release.count("raise NotImplementedError()") == 3
    source = notebook(ROOT / "source" / "gan" / "gan.ipynb")
    assert all(not c.get("outputs") for c in source["cells"] if c["cell_type"] == "code")
    for instructor_file in ("mistakes.yaml", "variants.yaml"):
        assert not (RELEASE.parent / instructor_file).exists(), f"{instructor_file} stays with the instructor"


def test_a_block_ending_in_another_activation_is_not_named_a_plain_relu(uncalibrated_checks, tmp_path):
    """block_plain_relu's results agree with any block whose last step is an activation layer when the layer checks
    compare kinds without the function: a sigmoid there is a mistake the catalogue does not hold, and
    Activation("leaky_relu") is the assignment's LeakyReLU(negative_slope=0.2) itself."""
    sigmoid = (
        "def define_generator_block(x, num_filters):\n"
        "    x = layers.Conv2DTranspose(num_filters, 4, strides=2, padding='same', use_bias=False)(x)\n"
        "    x = layers.BatchNormalization()(x)\n"
        "    return layers.Activation('sigmoid')(x)\n"
    )
    result = graded(uncalibrated_checks, with_answer(SOLUTION, tmp_path / "sigmoid.ipynb", "generator_block", sigmoid))
    layers_test = next(t for t in result["tests"] if t["extra_data"]["grade_id"] == "generator_block_layers")
    assert layers_test["status"] == "failed"
    assert MISTAKES["block_plain_relu"].says not in {t["extra_data"].get("diagnosis") for t in result["tests"]}
    leaky = sigmoid.replace("Activation('sigmoid')", "Activation('leaky_relu')")
    result = graded(uncalibrated_checks, with_answer(SOLUTION, tmp_path / "leaky.ipynb", "generator_block", leaky))
    assert by_grade_id(result)["generator_block_layers"] == FULL["generator_block_layers"]
