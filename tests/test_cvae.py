"""The conditional VAE assignment: its checks on fixed arrays, the attribute-control measure, and whole notebooks
graded through the worker (the solution, the release, every catalogued mistake, bad input)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT, by_grade_id, catalogue, cell, finding_kinds, graded, notebook, with_answer

from autograder import checks
from autograder.checks.conditioning import ConditioningLayers, UsesCondition
from autograder.checks.latent_arithmetic import AttributeVectorValues
from autograder.checks.quality.cvae import attribute_control

ASSIGNMENT = "cvae"
SOURCE = ROOT / "source" / "cvae" / "cvae.ipynb"
SOLUTION = ROOT / "solutions" / "cvae" / "cvae.ipynb"
RELEASE = ROOT / "release" / "cvae" / "cvae.ipynb"
CELEBA_FIXTURE = ROOT / "tests" / "data" / "fixtures" / "celeba_tiny"
MISTAKES = catalogue("cvae")
FULL = {
    "encoder_condition_shapes": 2,
    "encoder_condition_layers": 2,
    "decoder_condition_shapes": 1,
    "decoder_condition_layers": 1,
    "model_uses_condition": 3,
    "attribute_vector_values": 3,
    "cvae_quality": 6,
}

# The cpu profile's training (calibration refuses anything much shorter: the reference must halve the mean-image
# error), measured on fewer held-out faces and with a classifier trained for fewer epochs. conftest's
# assignment_course, assignment_grader, checks_only and ns fixtures use ASSIGNMENT and PROFILE.
PROFILE = {
    "train_images": 4000,
    "test_images": 300,
    "epochs": 2,
    "batch_size": 16,
    "learning_rate": 0.002,
    "latent_dim": 16,
    "filters": [16, 32],
    "wall_s": 240,
    "extra": {
        "image_size": 32,
        "beta": 1.0,
        "control_images": 100,
        "classifier_images": 4000,
        "classifier_epochs": 2,
        "control_attributes": ["Eyeglasses", "Male", "Bald", "Blond_Hair"],
    },
}


# --------------------------------------------------------------------------------------- checks, without a worker


def mistake_function(ns: dict, mistake_id: str):
    local = dict(ns)
    exec(MISTAKES[mistake_id].code, local)
    name = {
        "encoder_condition": "condition_encoder_input",
        "decoder_condition": "condition_decoder_input",
        "attribute_vector": "attribute_vector",
    }[MISTAKES[mistake_id].grade_id]
    return local[name]


Z = [[1.0, 2.0], [3.0, 0.0], [0.0, 1.0], [2.0, -1.0]]
A = [[1, 0, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0]]


def test_attribute_vector_on_fixed_arrays(ns):
    check = AttributeVectorValues()
    got = check.probe(ns["attribute_vector"], attribute="Smiling", z=Z, attributes=A)
    np.testing.assert_allclose(got["vector"], [1.0, 1.0])
    got = check.probe(ns["attribute_vector"], attribute="Eyeglasses", z=Z, attributes=A)
    np.testing.assert_allclose(got["vector"], [2.0, -2.0])
    assert check.judge(got, {"vector": np.array([2.0, -2.0])}, hidden=False).passed
    # hidden arrays from a seed: every attribute has faces with and without it, the vector has latent_dim values
    got = check.probe(ns["attribute_vector"], attribute="Young", seed=12, n=25, latent_dim=3)
    assert got["vector"].shape == (3,) and np.all(np.isfinite(got["vector"]))


@pytest.mark.parametrize(
    "mistake, message",
    [
        ("attribute_vector_sign_flipped", "got [-1.0, -1.0], expected [1.0, 1.0]"),
        ("attribute_vector_minus_overall_mean", "got [0.5, 0.5], expected [1.0, 1.0]"),
        ("attribute_vector_sums", "got [2.0, 2.0], expected [1.0, 1.0]"),
        ("attribute_vector_minus_one_for_absent", "NaN"),
    ],
)
def test_attribute_vector_mistakes_fail_with_got_and_expected(ns, mistake, message):
    check = AttributeVectorValues()
    expected = check.probe(ns["attribute_vector"], attribute="Smiling", z=Z, attributes=A)
    got = check.probe(mistake_function(ns, mistake), attribute="Smiling", z=Z, attributes=A)
    verdict = check.judge(got, expected, hidden=False)
    assert not verdict.passed and message in verdict.message
    hidden = check.judge(got, expected, hidden=True)
    assert not hidden.passed and "expected" not in hidden.message and "1.0" not in hidden.message


def test_attribute_vector_bad_returns_are_reported(ns):
    check = AttributeVectorValues()
    with pytest.raises(TypeError, match="returned None"):
        check.probe(lambda z, a, name: None, attribute="Smiling", z=Z, attributes=A)
    with pytest.raises(TypeError, match="not an array of numbers"):
        check.probe(lambda z, a, name: {"smile": 1}, attribute="Smiling", z=Z, attributes=A)
    expected = check.probe(ns["attribute_vector"], attribute="Smiling", z=Z, attributes=A)
    scalar = check.probe(lambda z, a, name: 0.5, attribute="Smiling", z=Z, attributes=A)
    verdict = check.judge(scalar, expected, hidden=False)
    assert not verdict.passed and "shape ()" in verdict.message and "(2,)" in verdict.message
    # a Keras tensor or a list is fine: the probe turns it into an array
    as_list = check.probe(lambda z, a, name: [1.0, 1.0], attribute="Smiling", z=Z, attributes=A)
    assert check.judge(as_list, expected, hidden=False).passed


def test_the_decoder_and_encoder_depend_on_the_condition(ns):
    check = UsesCondition()
    args = dict(image_size=16, latent_dim=4, filters=[4, 8])
    for part in ("decoder", "encoder"):
        raw = check.probe(ns["build_cvae"], part=part, **args)
        ref = check.summary(raw)
        assert all(c > 0 for c in ref["attribute_changes"]) and ref["input_change"] > 0
        assert ref["repeat_change"] == 0.0  # the same attributes give the same image
        assert check.judge(raw, raw, hidden=False).passed

    # the given builder with the catalogued mistake in its namespace (build_cvae looks helpers up in its globals)
    ignoring = dict(ns)
    exec(MISTAKES["decoder_condition_ignored"].code, ignoring)
    exec(_build_model_cell(), ignoring)
    ref = check.probe(ns["build_cvae"], part="decoder", **args)
    got = check.probe(ignoring["build_cvae"], part="decoder", **args)
    assert check.summary(got)["attribute_changes"] == [0.0] * 8 and check.summary(got)["input_change"] > 0
    verdict = check.judge(got, ref, hidden=False)
    assert not verdict.passed and "the decoder ignores its condition" in verdict.message


def test_uses_condition_names_the_attributes_that_change_nothing():
    check = UsesCondition()
    names = ["Smiling", "Eyeglasses", "Male"]
    ref = {
        "part": "decoder",
        "attribute_changes": [0.1, 0.2, 0.3],
        "input_change": 0.5,
        "repeat_change": 0.0,
        "names": names,
    }
    got = dict(ref, attribute_changes=[0.1, 0.0, 0.3], repeat_change=0.01)
    verdict = check.judge_summary(got, ref, hidden=False)
    assert not verdict.passed
    assert "switching Eyeglasses leaves the decoded image unchanged" in verdict.message
    assert "give a different decoded image each time" in verdict.message
    assert check.judge_summary(dict(ref, input_change=0.0), ref, hidden=False).message.endswith(
        "the decoder ignores its latent code."
    )


def test_conditioning_layers_judge():
    check = ConditioningLayers()
    ref = {
        "layers": [
            {"class": "Dense", "units": 60, "activation": "linear"},
            {"class": "Reshape", "target_shape": [10, 6, 1]},
            {"class": "Concatenate", "axis": 3},
        ],
        "params": 300,
        "args": {"input_shape": [10, 6, 3], "n_attributes": 4},
    }
    assert check.judge(ref, ref, hidden=True).passed
    wrong_axis = json.loads(json.dumps(ref))
    wrong_axis["layers"][2]["axis"] = 1
    verdict = check.judge(wrong_axis, ref, hidden=False)
    assert not verdict.passed and "joins on axis 1, expected 3" in verdict.message
    hidden = check.judge(wrong_axis, ref, hidden=True)
    assert not hidden.passed and "expected" not in hidden.message
    missing = dict(ref, layers=ref["layers"][2:])
    assert (
        "adds the layers Concatenate; expected Dense, Reshape, Concatenate"
        in check.judge(missing, ref, hidden=False).message
    )


def test_conditioning_layers_are_compared_in_their_canonical_forms():
    """As the block checks do: the configuration Keras writes (names, dtypes, initializers, -1 for the last axis)
    does not matter, and an activation step after a linear Dense layer is that layer's activation."""
    check = ConditioningLayers()
    glorot = {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": None}}

    def dense(activation="linear", **more):
        return {
            "class": "Dense",
            "name": "dense_3",
            "units": 60,
            "activation": activation,
            "use_bias": True,
            "kernel_initializer": glorot,
            "kernel_regularizer": None,
            **more,
        }

    def described(*first):
        return {
            "layers": [
                *first,
                {"class": "Reshape", "name": "r", "target_shape": [10, 6, 1]},
                {"class": "Concatenate", "name": "c", "axis": -1, "rank": 4},
            ],
            "params": 300,
            "args": {"input_shape": [10, 6, 3], "n_attributes": 4},
        }

    ref = described(dense())
    other_spelling = described(dense(kernel_initializer="he_normal", name="condition"))
    other_spelling["layers"][2] = {"class": "Concatenate", "axis": 3, "rank": 4}
    assert check.judge(other_spelling, ref, hidden=False).passed
    relu_step = described(dense(), {"class": "ReLU", "negative_slope": 0.0, "threshold": 0.0, "max_value": None})
    relu_argument = described(dense("relu"))
    assert check.judge(relu_step, relu_argument, hidden=False).passed  # the catalogued mistake's judge agrees
    verdict = check.judge(relu_step, ref, hidden=False)
    assert not verdict.passed and 'Dense has activation="relu", expected activation="linear"' in verdict.message
    no_bias = described(dense(use_bias=False))
    assert "use_bias=False, expected use_bias=True" in check.judge(no_bias, ref, hidden=False).message


def test_attribute_control_is_one_for_an_obedient_decoder_and_one_half_for_one_that_ignores():
    z = np.zeros((10, 2), "float32")
    y = np.random.default_rng(0).integers(0, 2, size=(10, 8)).astype("float32")
    recipe = {"extra": {"control_images": 10, "control_attributes": ["Smiling", "Eyeglasses"]}}

    class Decoder:
        def __init__(self, obeys):
            self.obeys = obeys

        def predict(self, inputs, **_):
            z, attrs = inputs
            return (attrs if self.obeys else np.full_like(attrs, 0.9))[:, :, None, None] * np.ones((1, 1, 2, 3))

    class Classifier:  # reads attribute k from pixel row k
        def predict(self, images, **_):
            return images[:, :, 0, 0]

    settings = checks.get("cvae_quality").settings(recipe)
    obeys = attribute_control(Decoder(True), Classifier(), z, y, settings)
    ignores = attribute_control(Decoder(False), Classifier(), z, y, settings)
    assert obeys == {"Smiling": 1.0, "Eyeglasses": 1.0}
    assert ignores == {"Smiling": 0.5, "Eyeglasses": 0.5}
    baselines = checks.get("cvae_quality").baselines({"x": np.zeros((2, 4, 4, 3)), "y": y[:2]}, assets=None)
    assert baselines["attribute_control"] == {"decoder_ignores_condition": 0.5}


def test_training_follows_one_seeded_permutation_per_pass():
    """`fit_shuffled` trains on the pair (images, attributes) in the order of the next permutation of
    np.random.default_rng(seed) at each pass, rows kept paired: the same batches on every backend."""
    import keras

    from autograder.checks.quality.base import fit_shuffled

    class Recorder(keras.Model):  # the first image pixel and first attribute of every row it trains on
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)
            self.seen = []

        def call(self, inputs):
            return self.dense(keras.ops.concatenate([keras.ops.reshape(inputs[0], (-1, 12)), inputs[1]], axis=1))

        def train_step(self, data):
            images, attrs = data[0]  # (x,) with x the pair: no targets
            self.seen.append((np.asarray(images)[:, 0, 0, 0], np.asarray(attrs)[:, 0]))
            return {"loss": 0.0}

    images = np.arange(10, dtype="float32")[:, None, None, None] * np.ones((1, 2, 2, 3), "float32")
    attrs = np.arange(10, dtype="float32")[:, None] * np.ones((1, 8), "float32")
    model = Recorder()
    model.compile(run_eagerly=True)
    history = fit_shuffled(model, (images, attrs), None, batch_size=4, epochs=2, seed=5)
    assert [len(x) for x, _ in model.seen] == [4, 4, 2, 4, 4, 2]
    rng = np.random.default_rng(5)
    want = np.concatenate([rng.permutation(10), rng.permutation(10)])
    np.testing.assert_array_equal(np.concatenate([x for x, _ in model.seen]), want)
    np.testing.assert_array_equal(np.concatenate([y for _, y in model.seen]), want)  # rows stay paired
    assert history == {"loss": [0.0, 0.0]}  # one value per pass


def test_the_training_probe_repeats_itself_and_reports_its_speed(ns, tmp_path):
    """One seed, the same training on this backend; the probe reports the wall time of `fit` and the images it saw,
    for the grader's images per second."""
    import keras

    rng = np.random.default_rng(0)
    data = tmp_path / "train.npz"
    np.savez(data, x=rng.random((48, 16, 16, 3)).astype("float32"), y=rng.integers(0, 2, (48, 8)).astype("float32"))
    recipe = {
        "learning_rate": 0.002,
        "batch_size": 16,
        "epochs": 2,
        "latent_dim": 4,
        "filters": [4, 8],
        "extra": {"image_size": 16},
    }
    check = checks.get("cvae_quality")
    runs = []
    for i in range(2):
        keras.utils.set_random_seed(3)  # as the worker does before its items
        runs.append(check.probe(ns["build_cvae"], recipe=recipe, data=data, export_dir=tmp_path / f"run{i}", seed=3))
    first, second = runs
    assert len(first["train_loss"]) == 2 and first["train_loss"] == second["train_loss"]
    assert set(first["history"]) >= {"loss", "reconstruction", "kl"}
    assert first["train_images"] == 48 * 2 and 0 < first["train_seconds"] < 600
    assert (tmp_path / "run0" / "encoder.keras").is_file() and (tmp_path / "run0" / "decoder.keras").is_file()


# --------------------------------------------------------------------------------------- the notebook and the course


def _build_model_cell() -> str:
    return "".join(cell(notebook(SOURCE), "build_model")["source"])


def test_notebook_settings_match_the_reference_weights_recipe():
    """The notebook's "load the reference weights" path builds the model with its own constants: they must be the
    cpu profile's, or the published weights would not fit."""
    from autograder.config import load_course

    recipe = load_course(ROOT).assignment("cvae").profiles["cpu"].recipe()
    settings: dict = {}
    exec("".join(cell(notebook(SOURCE), "settings")["source"]), settings)
    assert settings["IMAGE_SIZE"] == recipe["extra"]["image_size"]
    assert settings["LATENT_DIM"] == recipe["latent_dim"] and list(settings["FILTERS"]) == recipe["filters"]
    assert settings["CELEBA_DIR"] is None  # generated faces unless the instructor says otherwise


def test_the_published_weights_load_into_the_notebooks_model(ns):
    weights = ROOT / "reference_weights" / "cvae" / "cvae.reference.weights.h5"
    assert weights.is_file() and (ROOT / "release" / "cvae" / "cvae.reference.weights.h5").is_file()
    settings: dict = {}
    exec("".join(cell(notebook(SOURCE), "settings")["source"]), settings)
    model = ns["build_cvae"](
        image_size=settings["IMAGE_SIZE"], latent_dim=settings["LATENT_DIM"], filters=settings["FILTERS"]
    )
    model.load_weights(weights)
    from autograder.data import load_faces

    (_, _), (x, a), _ = load_faces(image_size=settings["IMAGE_SIZE"], n_train=1, n_test=64, seed=0)
    z_mean, _ = model.encoder.predict([x, a], verbose=0)
    mse = float(np.mean((model.decoder.predict([z_mean, a], verbose=0) - x) ** 2))
    assert mse < 0.5 * float(np.mean((x - x.mean(axis=0)) ** 2))  # trained weights, not a fresh model


def test_the_celeba_switch_reaches_the_grader_and_the_notebook(tmp_path):
    """One setting each: course.yaml's data.faces_source/celeba_dir for the grader, CELEBA_DIR in the notebook."""
    from autograder.grading.data import quality_subset

    data = {"faces_source": "celeba", "celeba_dir": str(CELEBA_FIXTURE), "cache_dir": str(tmp_path)}
    subset = quality_subset("faces", "train", n=3, seed=0, data=data, image_size=32)
    assert subset["x"].shape == (3, 32, 32, 3) and subset["y"].shape == (3, 8)
    code = "".join(cell(notebook(SOURCE), "load_data")["source"])
    assert 'source="celeba" if CELEBA_DIR else "generated", celeba_dir=CELEBA_DIR' in code


def test_the_public_checks_run_in_the_students_kernel(ns, capsys):
    """What a student runs: each test cell without its hidden part, with `run_check` from the setup cell."""
    from autograder.notebook import load_spec
    from autograder.submission import as_released

    for c in load_spec(SOURCE, "cvae").tests:
        exec(as_released(c.code), ns)
    out = capsys.readouterr().out
    # every public call has `expected=` (three shapes, two models, two attribute vectors) but the quality check
    assert out.count("passed:") == 7 and "scored by the autograder" in out
    assert "each of the 8 attributes and the latent code change the decoded image" in out


def test_release_has_no_solutions_and_the_solution_has_them():
    release = RELEASE.read_text()
    assert "BEGIN SOLUTION" not in release and "HIDDEN TESTS" not in release
    assert "raise NotImplementedError" in "".join(cell(notebook(RELEASE), "attribute_vector")["source"])
    assert "Concatenate" in "".join(cell(notebook(SOLUTION), "decoder_condition")["source"])


# --------------------------------------------------------------------------------------- whole notebooks


def test_the_solution_gets_full_marks(assignment_grader):
    result = graded(assignment_grader, SOLUTION)
    assert result["score"] == result["max_score"] == sum(FULL.values())
    assert by_grade_id(result) == pytest.approx(FULL, abs=1e-3)  # thirds of a point, rounded
    assert result["extra_data"]["findings"] == []
    quality = next(t for t in result["tests"] if t["extra_data"]["check"] == "cvae_quality")
    metrics = quality["extra_data"]["metrics"]
    assert metrics["attribute_control"] > 0.75 and 0 < metrics["test_mse"] < 0.02, metrics


def test_the_untouched_release_gets_zero_and_says_why(assignment_grader):
    result = graded(assignment_grader, RELEASE)
    assert result["score"] == 0 and result["max_score"] == sum(FULL.values())
    assert all(t["status"] == "failed" for t in result["tests"])
    assert "not implemented yet" in result["tests"][0]["output"]


def _groups() -> list[list[str]]:
    """The catalogue in notebooks of at most one mistake per answer cell, so each notebook tests several."""
    by_cell: dict[str, list[str]] = {}
    for m in MISTAKES.values():
        by_cell.setdefault(m.grade_id, []).append(m.id)
    return [[ids[i] for ids in by_cell.values() if i < len(ids)] for i in range(max(map(len, by_cell.values())))]


@pytest.mark.parametrize("group", _groups(), ids=lambda g: "+".join(g))
def test_every_catalogued_mistake_is_diagnosed_by_name(checks_only, tmp_path, group):
    nb = notebook(SOLUTION)
    for mistake in group:
        cell(nb, MISTAKES[mistake].grade_id)["source"] = MISTAKES[mistake].code
    path = tmp_path / "mistakes.ipynb"
    path.write_text(json.dumps(nb))
    result = graded(checks_only, path)
    for mistake in group:
        m = MISTAKES[mistake]
        failed = [t for t in result["tests"] if t["status"] == "failed"]
        mine = {t["extra_data"].get("diagnosis") for t in failed if t["extra_data"]["grade_id"] in _checked_by(m)}
        others = {MISTAKES[g].says for g in group if MISTAKES[g].grade_id != m.grade_id}  # a check of both cells
        assert m.says in mine and mine <= {m.says, None} | others, f"{mistake} was diagnosed as {mine}"
    hidden = " ".join(t["output"] for t in result["tests"] if t["extra_data"]["hidden"])
    for secret in ("12, 20", "7, 7", "10, 6", "Mustache", "Young", "expected", "180", "240"):
        assert secret not in hidden, f"a hidden check's message tells {secret!r}: {hidden}"
    answered = {MISTAKES[m].grade_id for m in group}
    untouched = {"attribute_vector": "attribute_vector_values"}
    for answer, question in untouched.items():
        if answer not in answered:
            assert by_grade_id(result)[question] == FULL[question]


def _checked_by(mistake) -> set[str]:
    """The test cells whose checks call the function of the mistake's answer cell (or the model built from it)."""
    return {
        "encoder_condition": {"encoder_condition_shapes", "encoder_condition_layers", "model_uses_condition"},
        "decoder_condition": {"decoder_condition_shapes", "decoder_condition_layers", "model_uses_condition"},
        "attribute_vector": {"attribute_vector_values"},
    }[mistake.grade_id]


def test_no_two_catalogued_mistakes_look_the_same(checks_only):
    """Two entries of one answer cell that give the same results everywhere could never be named: when two mistakes
    agree with a student's results, the diagnosis names neither (grading/diagnosis.py)."""
    expected = checks_only.prepare()
    for a in MISTAKES.values():
        for b in MISTAKES.values():
            if a.id >= b.id or a.grade_id != b.grade_id:
                continue
            same = True
            for call in checks_only.spec.calls:
                ra, rb = expected.mistake(a, call), expected.mistake(b, call)
                if ra is None or rb is None or ra.ok != rb.ok:
                    same = False
                elif ra.ok and not checks.get(call.check).judge(ra.value, rb.value, hidden=False).passed:
                    same = False
            assert not same, f"catalogue entries {a.id} and {b.id} give the same results"


def test_bad_inputs_complete_with_findings(checks_only, tmp_path):
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [ not json')
    result = graded(checks_only, broken)
    assert result["score"] == 0 and finding_kinds(result) == {"not_json"}

    # one notebook, three kinds of trouble: a missing answer cell, a tensor made up without layers, an edited
    # locked cell; the attribute vector, untouched, keeps its points
    nb = notebook(SOLUTION)
    nb["cells"].remove(cell(nb, "decoder_condition"))
    cell(nb, "encoder_condition")["source"] = (
        "def condition_encoder_input(image, attributes):\n"
        "    return keras.KerasTensor((None,) + tuple(image.shape[1:3]) + (image.shape[3] + 1,))\n"
    )
    cell(nb, "encoder_condition_shapes")["source"] = "print('all good')\n"
    path = tmp_path / "bad.ipynb"
    path.write_text(json.dumps(nb))
    result = graded(checks_only, path)
    scores = by_grade_id(result)
    assert {"missing_answer_cell", "locked_cell_edited"} <= finding_kinds(result)
    assert scores["attribute_vector_values"] == 3
    assert scores["decoder_condition_shapes"] == 0 and scores["model_uses_condition"] == 0
    assert scores["encoder_condition_shapes"] == 0  # graded from the source's test cell, not the edited one
    shapes = [t for t in result["tests"] if t["extra_data"]["grade_id"] == "encoder_condition_shapes"]
    assert "not computed from its inputs" in shapes[0]["output"]
    decoder = [t for t in result["tests"] if t["extra_data"]["grade_id"] == "decoder_condition_shapes"]
    assert "condition_decoder_input is not defined" in decoder[0]["output"]


@pytest.mark.slow
def test_a_decoder_that_ignores_the_attributes_loses_the_control_points(assignment_grader, tmp_path):
    m = MISTAKES["decoder_condition_ignored"]
    result = graded(assignment_grader, with_answer(SOLUTION, tmp_path / "ignored.ipynb", m.grade_id, m.code))
    quality = next(t for t in result["tests"] if t["extra_data"]["check"] == "cvae_quality")
    assert abs(quality["extra_data"]["metrics"]["attribute_control"] - 0.5) < 1e-9  # the same face on and off
    assert quality["score"] < 0.75 * quality["max_score"]


@pytest.mark.slow
def test_a_lambda_layer_in_the_conditioning_cannot_be_measured(assignment_grader, tmp_path):
    code = (
        "def condition_decoder_input(z, attributes):\n"
        "    return layers.Lambda(lambda t: keras.ops.concatenate(t, axis=-1))([z, attributes])\n"
    )
    result = graded(assignment_grader, with_answer(SOLUTION, tmp_path / "lambda.ipynb", "decoder_condition", code))
    quality = next(t for t in result["tests"] if t["extra_data"]["check"] == "cvae_quality")
    assert quality["score"] == 0 and "standard Keras layers" in quality["output"]
    assert by_grade_id(result)["decoder_condition_shapes"] == pytest.approx(1, abs=1e-3)  # only the export fails


@pytest.mark.slow
def test_generated_notebooks_are_in_sync_with_the_source():
    from autograder.config import load_course
    from autograder.generate import out_of_sync

    assert out_of_sync(load_course(ROOT), ["cvae"]) == []


@pytest.mark.slow
def test_the_solution_notebook_runs_and_its_sliders_redraw_the_face(tmp_path):
    """The whole notebook in a fresh kernel (published weights, heavy cells included), then the sliders moved from
    inside the kernel, as JupyterLab does when a student drags one."""
    import shutil

    import nbformat
    from nbclient import NotebookClient

    shutil.copy(ROOT / "release" / "cvae" / "cvae.reference.weights.h5", tmp_path / "cvae.reference.weights.h5")
    nb = nbformat.read(SOLUTION, as_version=4)
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "first = face_view.value\n"
            "k = names.index('Eyeglasses')\n"
            "old = attribute_sliders[k].value\n"
            "attribute_sliders[k].value = 1.0 - old\n"
            "changed = face_view.value != first\n"
            "attribute_sliders[k].value = old\n"
            "restored = face_view.value == first\n"
            "code_sliders[0].value += 2.0\n"
            "print('SLIDERS', changed, restored, face_view.value != first, len(attribute_sliders), len(code_sliders))\n"
        )
    )
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    assert any("loaded cvae.reference.weights.h5" in o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "SLIDERS True True True 8 16" in "".join(o.get("text", "") for o in nb.cells[-1]["outputs"])
