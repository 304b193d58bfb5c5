"""The diagnosis rule on plain results (no worker, no Keras): a catalogued mistake is named only when every check of
its answer cell agrees with it, and which answer cells each check runs, read from the source notebook."""

from __future__ import annotations

from pathlib import Path

from autograder.grading.diagnosis import diagnose, exercised_cells
from autograder.mistakes import Mistake
from autograder.notebook import CheckCall, SourceCell, Spec, load_spec
from autograder.runner import Outcome

ROOT = Path(__file__).resolve().parents[2]

SHAPE = CheckCall("enc_tests", 0, "shape", "define_encoder", {}, hidden=False)
LAYERS = CheckCall("enc_tests", 1, "layers", "define_encoder", {}, hidden=True)
DEC = CheckCall("dec_tests", 0, "shape", "define_decoder", {}, hidden=False)
MODEL = CheckCall("model_tests", 0, "model", "build", {}, hidden=False)  # runs both blocks
CALLS = [SHAPE, LAYERS, DEC, MODEL]
CELLS = {
    SHAPE.id: frozenset({"enc"}),
    LAYERS.id: frozenset({"enc"}),
    DEC.id: frozenset({"dec"}),
    MODEL.id: frozenset({"enc", "dec"}),
}
REFERENCE = {SHAPE.id: "14x14", LAYERS.id: "conv conv pool", DEC.id: "28x28", MODEL.id: "reads all"}


def ok(value) -> Outcome:
    return Outcome(True, value)


def same(call, got, want) -> bool:  # the judges of these fake checks: equal values pass
    return got.value == want.value


def run(student: dict, mistakes: dict[Mistake, dict]) -> dict[str, str]:
    """The diagnoses of a student whose results differ from the reference's where `student` says, with catalogued
    mistakes whose results differ where theirs say (a value or an Outcome per call id)."""

    def results(changes):
        return {
            c.id: changes.get(c.id)
            if isinstance(changes.get(c.id), Outcome)
            else ok(changes.get(c.id, REFERENCE[c.id]))
            for c in CALLS
        }

    wrong = {m: results(changes) for m, changes in mistakes.items()}
    return diagnose(
        CALLS,
        student=results(student),
        reference={k: ok(v) for k, v in REFERENCE.items()},
        mistakes=list(mistakes),
        wrong=lambda m, call: wrong[m].get(call.id),
        cells=CELLS,
        same=same,
    )


ONE_CONV = Mistake("one_conv", "enc", "one convolution", "")
NO_POOL = Mistake("no_pool", "enc", "no pooling", "")
DEC_WRONG = Mistake("dec_wrong", "dec", "decoder wrong", "")


def test_a_mistake_that_every_check_agrees_with_is_named_on_each_failure_it_explains():
    got = run(
        {LAYERS.id: "conv pool"},
        {ONE_CONV: {LAYERS.id: "conv pool"}, NO_POOL: {SHAPE.id: "28x28", LAYERS.id: "conv conv"}},
    )
    assert got == {LAYERS.id: "one convolution"}


def test_a_mistake_that_another_check_contradicts_is_not_named():
    """The student's layers equal the catalogued mistake's (no pooling), but their output shape is right, which that
    mistake's is not: they reduce the resolution another way. One check alone would have named the mistake."""
    got = run({LAYERS.id: "conv conv"}, {NO_POOL: {SHAPE.id: "28x28", LAYERS.id: "conv conv"}})
    assert got == {}


def test_a_check_the_student_fails_where_the_mistake_passes_contradicts_it():
    got = run({LAYERS.id: "conv pool", SHAPE.id: "13x13"}, {ONE_CONV: {LAYERS.id: "conv pool"}})
    assert got == {}


def test_two_mistakes_that_the_checks_cannot_tell_apart_are_both_left_unnamed():
    twin = Mistake("twin", "enc", "another sentence", "")
    got = run({LAYERS.id: "conv pool"}, {ONE_CONV: {LAYERS.id: "conv pool"}, twin: {LAYERS.id: "conv pool"}})
    assert got == {}


def test_a_mistake_in_each_of_two_cells_is_named_and_a_shared_check_counts_only_when_the_other_cell_is_right():
    enc_bad = {
        ONE_CONV: {LAYERS.id: "conv pool", MODEL.id: "ignores the encoder"},
        DEC_WRONG: {DEC.id: "27x27", MODEL.id: "ignores the decoder"},
    }
    # both cells wrong: the model check fails because of both, so it neither confirms nor contradicts either one
    both = run({LAYERS.id: "conv pool", DEC.id: "27x27", MODEL.id: "ignores both"}, enc_bad)
    assert both == {LAYERS.id: "one convolution", DEC.id: "decoder wrong"}
    # the decoder right: the model check is the encoder's evidence, and here it contradicts the mistake
    alone = run({LAYERS.id: "conv pool", MODEL.id: "reads all"}, enc_bad)
    assert alone == {}
    # ... and here it agrees, so the model check gets the sentence too
    agreeing = run({LAYERS.id: "conv pool", MODEL.id: "ignores the encoder"}, enc_bad)
    assert agreeing == {LAYERS.id: "one convolution", MODEL.id: "one convolution"}


def test_errors_agree_only_when_they_are_of_the_same_kind():
    raises = Outcome(False, error="ValueError: bad", raised="ValueError")
    mistake = {ONE_CONV: {SHAPE.id: raises, LAYERS.id: raises}}
    assert run({SHAPE.id: raises, LAYERS.id: raises}, mistake) == {
        SHAPE.id: "one convolution",
        LAYERS.id: "one convolution",
    }
    other = Outcome(False, error="NameError: define_encoder", raised="NameError")
    assert run({SHAPE.id: other, LAYERS.id: other}, mistake) == {}


def test_a_check_the_mistake_was_not_run_on_is_no_evidence():
    def not_run(m, call):
        return None if call is SHAPE else ok("conv pool" if call is LAYERS else REFERENCE[call.id])

    student = {c.id: ok(REFERENCE[c.id]) for c in CALLS} | {LAYERS.id: ok("conv pool"), SHAPE.id: ok("13x13")}
    got = diagnose(
        CALLS,
        student=student,
        reference={k: ok(v) for k, v in REFERENCE.items()},
        mistakes=[ONE_CONV],
        wrong=not_run,
        cells=CELLS,
        same=same,
    )
    assert got == {LAYERS.id: "one convolution"}


def test_a_passing_submission_gets_no_diagnosis():
    assert run({}, {ONE_CONV: {LAYERS.id: "conv pool"}}) == {}


def test_exercised_cells_follow_setup_functions_to_the_answer_cells_they_use():
    def test_cell(gid, function):
        return SourceCell("test", gid, "", 1.0, (CheckCall(gid, 0, "c", function, {}, hidden=False),))

    spec = Spec(
        "a",
        (
            SourceCell("setup", "imports", "import numpy as np\nfrom keras import layers\n"),
            SourceCell(
                "answer", "enc", "def helper(x):\n    return x\n\ndef define_encoder(x):\n    return helper(x)\n"
            ),
            SourceCell("answer", "dec", "def define_decoder(x):\n    return layers.Dense(2)(x)\n"),
            SourceCell("setup", "model", "def build():\n    return define_decoder(define_encoder(np.zeros(3)))\n"),
            test_cell("enc_t", "define_encoder"),
            test_cell("dec_t", "define_decoder"),
            test_cell("model_t", "build"),
            test_cell("np_t", "np"),
        ),
        "0",
    )
    assert exercised_cells(spec) == {
        "enc_t/0": {"enc"},
        "dec_t/0": {"dec"},
        "model_t/0": {"enc", "dec"},
        "np_t/0": set(),
    }


def test_exercised_cells_of_the_cvae_notebook():
    spec = load_spec(ROOT / "source" / "cvae" / "cvae.ipynb", "cvae")
    cells = exercised_cells(spec)
    by_check = {}
    for call in spec.calls:
        by_check.setdefault(call.grade_id, set()).update(cells[call.id])
    assert by_check["encoder_condition_shapes"] == {"encoder_condition"}
    assert by_check["decoder_condition_layers"] == {"decoder_condition"}
    assert by_check["model_uses_condition"] == {"encoder_condition", "decoder_condition"}
    assert by_check["attribute_vector_values"] == {"attribute_vector"}
