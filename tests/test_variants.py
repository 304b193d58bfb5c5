"""The catalogues beside each source notebook, graded like submissions.

- every correct variant (`source/<a>/variants.yaml`) gets full marks and no diagnosis;
- every catalogued mistake (`source/<a>/mistakes.yaml`) is diagnosed as itself and as nothing else, on the checks of
  its own answer cell;
- copies of mistakes written another way (below) are diagnosed exactly as the mistake, with the same score;
- wrong cells that no catalogued mistake explains (below) are named as no mistake.

The entries of an assignment all run in one worker, as the grader runs its own catalogue (`Grader.prepare`); each
is then scored as a student's run by the grader's own scoring and diagnosis. Training checks are left out (no entry
trains; each assignment's tests train its solution and some mistakes), so the catalogues of every assignment are
graded in a few minutes. One notebook per assignment, made of correct variants, is graded through the whole
pipeline, from the .ipynb file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import pytest
from conftest import ROOT, cell, copy_course, notebook, without_quality

from autograder.checks import TrainingCheck, get
from autograder.config import load_course
from autograder.grading import Grader, StudentRun
from autograder.grading.diagnosis import exercised_cells
from autograder.grading.plans import probe_id
from autograder.items import STUDENT
from autograder.mistakes import Mistake, load_mistakes, load_variants
from autograder.notebook import load_spec

MIN_VARIANTS = 5

# Copies of catalogued mistakes as other students write them (other names, other but equivalent spellings): each
# must get the catalogued mistake's diagnoses and score, check by check.
RESPELLED = {
    "autoencoder": {
        "encoder_no_activation": """
def define_encoder_block(x, num_filters):
    for _ in range(2):
        x = keras.layers.Conv2D(filters=num_filters, kernel_size=(3, 3), padding="same", activation=None,
                                kernel_initializer=keras.initializers.HeNormal())(x)
    return keras.layers.MaxPool2D(pool_size=2)(x)
""",
        "encoder_valid_padding": """
def define_encoder_block(inputs, filters):
    h = layers.Conv2D(filters, (3, 3), padding="valid", kernel_initializer="he_normal")(inputs)
    h = layers.ReLU()(h)
    h = layers.Conv2D(filters, (3, 3), padding="valid", kernel_initializer="he_normal")(h)
    h = layers.Activation("relu")(h)
    return layers.MaxPooling2D(pool_size=(2, 2))(h)
""",
        "encoder_average_pooling": """
def define_encoder_block(x, num_filters):
    conv = lambda t: layers.Conv2D(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(t)
    return layers.AvgPool2D(pool_size=(2, 2))(conv(conv(x)))
""",
        "conv_transpose_upsampling": """
def define_decoder_block(x, num_filters):
    x = layers.Conv2DTranspose(filters=num_filters, kernel_size=(3, 3), strides=(2, 2), padding="same",
                               kernel_initializer="he_normal")(x)
    x = layers.Activation("relu")(x)
    x = layers.Conv2D(num_filters, 3, padding="same", kernel_initializer="he_normal")(x)
    return layers.ReLU()(x)
""",
        "decoder_one_convolution": """
def define_decoder_block(x, num_filters):
    upsampled = layers.UpSampling2D(size=(2, 2))(x)
    conv = layers.Conv2D(filters=num_filters, kernel_size=3, padding="same", kernel_initializer="he_normal")
    return layers.Activation(keras.activations.relu)(conv(upsampled))
""",
        "encoder_fixed_filters": """
def define_encoder_block(x, num_filters):
    FILTERS = 32
    for _ in range(2):
        x = layers.Conv2D(FILTERS, 3, padding="same", kernel_initializer="he_normal")(x)
        x = layers.ReLU()(x)
    return layers.MaxPooling2D()(x)
""",
    },
    "vae": {
        "std_is_exp_log_var": """
class Sampling(layers.Layer):
    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        mu, log_var = inputs
        sigma = ops.exp(log_var)
        eps = keras.random.normal(shape=ops.shape(mu), seed=self.seed_generator)
        return mu + sigma * eps
""",
        "noise_not_scaled": """
class Sampling(layers.Layer):
    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        return ops.add(z_mean, keras.random.normal(ops.shape(z_log_var), seed=self.seed_generator))
""",
        "kl_sign_flipped": """
def vae_loss(x, x_decoded, z_mean, z_log_var, beta=1.0):
    rec = ops.sum(keras.losses.binary_crossentropy(x, x_decoded), axis=(1, 2))
    kl_term = 0.5 * ops.sum(1.0 + z_log_var - z_mean ** 2 - ops.exp(z_log_var), axis=-1)
    return ops.mean(rec) + beta * ops.mean(kl_term)
""",
        "mse_reconstruction": """
def vae_loss(x, x_decoded, z_mean, z_log_var, beta=1.0):
    squared = ops.square(ops.subtract(x, x_decoded))
    reconstruction = ops.sum(ops.reshape(squared, (ops.shape(x)[0], -1)), axis=1)
    kl = -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=1)
    return ops.mean(reconstruction + beta * kl)
""",
        "beta_ignored": """
def vae_loss(x, x_decoded, z_mean, z_log_var, beta=1.0):
    reconstruction_loss = ops.mean(ops.sum(ops.binary_crossentropy(x, x_decoded), axis=(1, 2, 3)))
    kl_loss = ops.mean(0.5 * ops.sum(ops.exp(z_log_var) + ops.square(z_mean) - 1 - z_log_var, axis=1))
    return reconstruction_loss + kl_loss
""",
        "loss_not_reduced": """
def vae_loss(x, x_decoded, z_mean, z_log_var, beta=1.0):
    per_image = ops.sum(ops.binary_crossentropy(x, x_decoded), axis=[1, 2, 3])
    return per_image - beta * 0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
""",
    },
    "cvae": {
        "encoder_condition_relu": """
def condition_encoder_input(image, attributes):
    _, h, w, _ = image.shape
    c = keras.layers.Dense(units=h * w, activation=keras.activations.relu)(attributes)
    c = keras.layers.Reshape(target_shape=(h, w, 1))(c)
    return keras.layers.concatenate([image, c])
""",
        "encoder_condition_ignored": """
def condition_encoder_input(image, attributes):
    conditioned = image
    return conditioned
""",
        "decoder_condition_ignored": """
def condition_decoder_input(z, attributes):
    del attributes  # not needed
    return z
""",
        "attribute_vector_sign_flipped": """
def attribute_vector(z, attributes, name):
    mask = attributes[:, ATTRIBUTES.index(name)].astype(bool)
    return np.mean(z[~mask], axis=0) - np.mean(z[mask], axis=0)
""",
        "attribute_vector_sums": """
def attribute_vector(z, attributes, name):
    k = ATTRIBUTES.index(name)
    return np.sum(z[attributes[:, k] == 1], axis=0) - np.sum(z[attributes[:, k] == 0], axis=0)
""",
    },
}

# Wrong answer cells that no catalogued mistake explains: the feedback must not name a mistake that the student's
# other results contradict (assignment -> name -> (answer cell, code)). Before the diagnosis read every check of the
# cell, encoder_strided_convolution was told "Your encoder block never reduces the resolution" (its layers equal the
# no-pooling mistake's, while its output shape shows that it does reduce it).
UNEXPLAINED = {
    "autoencoder": {
        "encoder_strided_convolution": (
            "encoder_block",
            """
def define_encoder_block(x, num_filters):
    x = layers.Conv2D(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    return layers.Conv2D(num_filters, 3, strides=2, activation="relu", padding="same",
                         kernel_initializer="he_normal")(x)
""",
        ),
        "encoder_one_linear_convolution": (
            "encoder_block",
            """
def define_encoder_block(x, num_filters):
    x = layers.Conv2D(num_filters, 3, padding="same", kernel_initializer="he_normal")(x)
    return layers.MaxPooling2D()(x)
""",
        ),
        "decoder_transpose_then_upsampling": (
            "decoder_block",
            """
def define_decoder_block(x, num_filters):
    x = layers.UpSampling2D()(x)
    x = layers.Conv2DTranspose(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    return layers.Conv2D(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(x)
""",
        ),
        "encoder_five_by_five": (
            "encoder_block",
            """
def define_encoder_block(x, num_filters):
    x = layers.Conv2D(num_filters, 5, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    x = layers.Conv2D(num_filters, 5, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    return layers.MaxPooling2D()(x)
""",
        ),
        "encoder_average_pooling_no_activation": (
            "encoder_block",
            """
def define_encoder_block(x, num_filters):
    x = layers.Conv2D(num_filters, 3, padding="same", kernel_initializer="he_normal")(x)
    x = layers.Conv2D(num_filters, 3, padding="same", kernel_initializer="he_normal")(x)
    return layers.AveragePooling2D(2)(x)
""",
        ),
    },
    "vae": {
        "std_is_log_var": (
            "sampling",
            """
class Sampling(layers.Layer):
    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + z_log_var * epsilon
""",
        ),
        "beta_on_both_terms": (
            "vae_loss",
            """
def vae_loss(x, x_decoded, z_mean, z_log_var, beta=1.0):
    reconstruction = ops.sum(ops.binary_crossentropy(x, x_decoded), axis=(1, 2, 3))
    kl = -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=1)
    return ops.mean(beta * (reconstruction + kl))
""",
        ),
        "kl_mean_and_not_reduced": (
            "vae_loss",
            """
def vae_loss(x, x_decoded, z_mean, z_log_var, beta=1.0):
    reconstruction = ops.sum(ops.binary_crossentropy(x, x_decoded), axis=(1, 2, 3))
    kl = -0.5 * ops.mean(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=1)
    return reconstruction + beta * kl
""",
        ),
        "everything_summed": (
            "vae_loss",
            """
def vae_loss(x, x_decoded, z_mean, z_log_var, beta=1.0):
    reconstruction = ops.sum(ops.binary_crossentropy(x, x_decoded))
    kl = -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
    return (reconstruction + beta * kl) / 2
""",
        ),
    },
    "cvae": {
        "encoder_condition_sigmoid": (
            "encoder_condition",
            """
def condition_encoder_input(image, attributes):
    height, width = image.shape[1], image.shape[2]
    channel = layers.Dense(height * width, activation="sigmoid")(attributes)
    channel = layers.Reshape((height, width, 1))(channel)
    return layers.Concatenate()([image, channel])
""",
        ),
        "vector_medians": (
            "attribute_vector",
            """
def attribute_vector(z, attributes, name):
    column = attributes[:, ATTRIBUTES.index(name)]
    return np.median(z[column == 1], axis=0) - np.median(z[column == 0], axis=0)
""",
        ),
    },
}


# ------------------------------------------------------------------------------------------ the catalogues


def assignments() -> list[str]:
    """The course's assignments that have a source notebook."""
    return [a for a in load_course(ROOT).assignments if (ROOT / "source" / a / f"{a}.ipynb").is_file()]


def _entries(kind: str) -> list:
    listing = {
        "variant": lambda a: [v.id for v in load_variants(ROOT, a)],
        "mistake": lambda a: [m.id for m in load_mistakes(ROOT, a)],
        "respelled": lambda a: sorted(RESPELLED.get(a, {})),
        "unexplained": lambda a: sorted(UNEXPLAINED.get(a, {})),
    }[kind]
    found = []
    for a in assignments():
        items = listing(a)
        found += [pytest.param(a, i, id=f"{a}-{i}") for i in items]
    return found


@dataclass
class Catalogue:
    """An assignment's grader without its training checks, with every catalogue entry run in its worker."""

    grader: Grader
    runs: dict[str, Mistake]  # "variant:<id>", "mistake:<id>", ... -> the entry as the worker ran it

    def score(self, key: str) -> list:
        """The check results of the entry `key` graded as a student's answers."""
        run = self.runs[key]
        expected = self.grader.prepare()
        outcomes = {probe_id(STUDENT, call): expected.mistake(run, call) for call in self.grader.spec.calls}
        return self.grader.score(StudentRun(outcomes=outcomes))


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """assignment -> its Catalogue, made the first time a test asks for it."""
    made: dict[str, Catalogue] = {}

    def get(assignment: str) -> Catalogue:
        if assignment not in made:
            if not (ROOT / "reference_weights" / assignment / "thresholds.json").is_file():
                pytest.skip(f"{assignment} has no reference weights yet (autograder calibrate {assignment})")
            root = copy_course(tmp_path_factory.mktemp(assignment), assignments=(assignment,))
            grader = without_quality(Grader.create(load_course(root), assignment, profile="cpu"))
            mistakes = load_mistakes(ROOT, assignment)
            cells = {m.id: m.grade_id for m in mistakes}
            entries = {f"mistake:{m.id}": (m.grade_id, m.code) for m in mistakes}
            entries.update({f"variant:{v.id}": (v.grade_id, v.code) for v in load_variants(ROOT, assignment)})
            entries.update({f"respelled:{k}": (cells[k], code) for k, code in RESPELLED.get(assignment, {}).items()})
            entries.update({f"unexplained:{k}": e for k, e in UNEXPLAINED.get(assignment, {}).items()})
            runs = {key: Mistake(f"entry{i}", gid, "", code) for i, (key, (gid, code)) in enumerate(entries.items())}
            # one worker runs the reference and every entry; scoring names only the real catalogue's mistakes
            expected = replace(grader, mistakes=mistakes + list(runs.values())).prepare()
            made[assignment] = Catalogue(replace(grader, mistakes=mistakes, _expected=expected), runs)
        return made[assignment]

    return get


def diagnoses(results) -> dict[str, str | None]:
    return {r.name: r.diagnosis for r in results if not r.passed}


def points(results) -> float:
    return round(sum(r.score for r in results), 2)


@pytest.mark.parametrize("assignment", assignments())
def test_every_assignment_has_a_catalogue_of_correct_variants(assignment):
    spec = load_spec(ROOT / "source" / assignment / f"{assignment}.ipynb", assignment)
    solution = {c.grade_id: c.code for c in spec.answers}
    variants = load_variants(ROOT, assignment)
    assert len(variants) >= MIN_VARIANTS, f"source/{assignment}/variants.yaml has {len(variants)} entries"
    for v in variants:
        assert v.grade_id in solution, f"{v.id}: '{v.grade_id}' is not an answer cell of {assignment}"
        assert v.code.strip() != solution[v.grade_id].strip(), f"{v.id} is the solution itself"
    assert set(solution) <= {v.grade_id for v in variants}, "every answer cell has a variant"


@pytest.mark.parametrize("assignment, variant", _entries("variant"))
def test_each_correct_variant_gets_full_marks_and_no_diagnosis(catalogue, assignment, variant):
    results = catalogue(assignment).score(f"variant:{variant}")
    failed = {r.name: r.message for r in results if not r.passed}
    assert not failed, f"{variant} lost points: {failed}"
    assert points(results) == pytest.approx(sum(r.max_score for r in results))
    assert not any(r.diagnosis for r in results)


@pytest.mark.parametrize("assignment, mistake", _entries("mistake"))
def test_each_catalogued_mistake_is_diagnosed_as_itself_and_nothing_else(catalogue, assignment, mistake):
    cat = catalogue(assignment)
    m = next(m for m in cat.grader.mistakes if m.id == mistake)
    results = cat.score(f"mistake:{mistake}")
    exercising = exercised_cells(cat.grader.spec)
    by_name = dict(zip((r.name for r in results), (c for t in cat.grader.spec.tests for c in t.calls)))
    failed = [r for r in results if not r.passed]
    assert failed, f"{mistake} gets full marks: it is not a mistake the checks can see"
    assert all(m.grade_id in exercising[by_name[r.name].id] for r in failed), (
        f"{mistake} fails checks that do not run its answer cell: {[r.name for r in failed]}"
    )
    named = set(diagnoses(results).values())
    assert m.says in named and named <= {m.says, None}, f"{mistake} is diagnosed as {named}"


@pytest.mark.parametrize("assignment, mistake", _entries("respelled"))
def test_a_mistake_written_another_way_is_diagnosed_the_same(catalogue, assignment, mistake):
    cat = catalogue(assignment)
    mine, theirs = cat.score(f"respelled:{mistake}"), cat.score(f"mistake:{mistake}")
    assert diagnoses(mine) == diagnoses(theirs)
    assert points(mine) == points(theirs)


@pytest.mark.parametrize("assignment, mistake", _entries("unexplained"))
def test_a_mistake_outside_the_catalogue_is_never_named_as_a_catalogued_one(catalogue, assignment, mistake):
    results = catalogue(assignment).score(f"unexplained:{mistake}")
    assert any(not r.passed for r in results), f"{mistake} gets full marks: the checks cannot see it"
    assert not {d for d in diagnoses(results).values() if d}, diagnoses(results)


@pytest.mark.parametrize("assignment", assignments())
def test_a_notebook_of_correct_variants_gets_full_marks(catalogue, tmp_path, assignment):
    """The first variant of each answer cell, all in one submitted notebook, graded from the file."""
    cat = catalogue(assignment)
    nb = notebook(cat.grader.course.root / "solutions" / assignment / f"{assignment}.ipynb")
    used = {}
    for v in load_variants(ROOT, assignment):
        if v.grade_id not in used:
            used[v.grade_id] = v.id
            cell(nb, v.grade_id)["source"] = v.code
    path = tmp_path / "variants.ipynb"
    path.write_text(json.dumps(nb))
    result = cat.grader.grade(path, student="variants").to_dict()
    failed = {t["name"]: t["output"] for t in result["tests"] if t["status"] == "failed"}
    assert not failed and result["extra_data"]["findings"] == [], (used, failed, result["extra_data"]["findings"])
    assert not any(isinstance(get(t["extra_data"]["check"]), TrainingCheck) for t in result["tests"])
    assert result["score"] == pytest.approx(sum(t["max_score"] for t in result["tests"]))
