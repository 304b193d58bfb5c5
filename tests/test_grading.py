"""Grading whole notebooks through the worker: the solution, the release, known mistakes, bad input."""

import json

import pytest
from conftest import RELEASE, ROOT, SOLUTION, by_grade_id, cell, graded, notebook, with_answer

from autograder.mistakes import load_mistakes

FULL = {
    "encoder_block_shapes": 2,
    "encoder_block_structure": 3,
    "decoder_block_shapes": 2,
    "decoder_block_structure": 3,
    "reconstruction_quality": 4,
}
MISTAKES = {m.id: m for m in load_mistakes(ROOT, "autoencoder")}
ENCODER_ZERO = {"encoder_block_shapes": 0, "encoder_block_structure": 0}


def test_the_solution_gets_full_marks(grader):
    result = graded(grader, SOLUTION)
    assert result["score"] == result["max_score"] == 14
    assert all(t["status"] == "passed" for t in result["tests"])
    assert result["extra_data"]["findings"] == []
    quality = [t for t in result["tests"] if t["extra_data"]["check"] == "reconstruction_quality"][0]
    assert 0 < quality["extra_data"]["metrics"]["test_mse"] < 0.06


def test_the_untouched_release_gets_zero_and_says_why(grader):
    result = graded(grader, RELEASE)
    assert result["score"] == 0 and result["max_score"] == 14
    assert all(t["status"] == "failed" for t in result["tests"])
    assert "not implemented yet" in result["tests"][0]["output"]


def test_hidden_checks_never_show_hidden_inputs_or_expectations(grader, tmp_path):
    wrong = with_answer(SOLUTION, tmp_path / "s.ipynb", "encoder_block", MISTAKES["encoder_valid_padding"].code)
    result = graded(grader, wrong)
    hidden = [t for t in result["tests"] if t["extra_data"]["hidden"]]
    assert all(t["status"] == "failed" for t in hidden if t["name"].startswith("encoder_block_shapes"))
    text = " ".join(t["output"] for t in hidden)
    for secret in ("(7, 7, 3)", "(13, 10, 2)", "(12, 12, 3)", "(3, 3, 8)", "498", "expected"):
        assert secret not in text
    public = [
        t for t in result["tests"] if t["name"].startswith("encoder_block_shapes") and not t["extra_data"]["hidden"]
    ]
    assert "got output shape (12, 12, 16), expected (14, 14, 16)" in public[0]["output"]


# mistake -> the non-quality points it keeps (question -> points); each is diagnosed by name
PARTIAL = {
    "conv_transpose_upsampling": dict(FULL, decoder_block_structure=2),  # same parameter count, other layers
    "encoder_one_convolution": dict(FULL, encoder_block_structure=1),
    "encoder_no_activation": dict(FULL, encoder_block_structure=2),
    "encoder_valid_padding": dict(FULL, encoder_block_shapes=0, encoder_block_structure=2),
    # right by chance on the public input that asks for 32 filters
    "encoder_fixed_filters": dict(FULL, encoder_block_shapes=0.5, encoder_block_structure=1),
    "encoder_no_pooling": dict(FULL, encoder_block_shapes=0, encoder_block_structure=2),
    "decoder_valid_padding": dict(FULL, decoder_block_shapes=0, decoder_block_structure=2),
}


@pytest.mark.parametrize("mistake", sorted(PARTIAL))
def test_wrong_implementations_get_partial_scores_and_a_named_diagnosis(grader, tmp_path, mistake):
    m = MISTAKES[mistake]
    result = graded(grader, with_answer(SOLUTION, tmp_path / f"{mistake}.ipynb", m.grade_id, m.code))
    scores = by_grade_id(result)
    quality = scores.pop("reconstruction_quality")
    want = dict(PARTIAL[mistake])
    want.pop("reconstruction_quality")
    assert scores == pytest.approx(want)
    assert 0 <= quality <= 4
    diagnoses = {t["extra_data"].get("diagnosis") for t in result["tests"] if t["status"] == "failed"}
    assert m.says in diagnoses and diagnoses <= {m.says, None}, f"{mistake} was diagnosed as {diagnoses}"


def test_every_catalogued_mistake_is_diagnosed_somewhere(grader):
    """Each catalogue entry must fail at least one check against the reference, or it can never be named."""
    expected = grader.prepare()
    for mistake in MISTAKES.values():
        differs = False
        for call in grader.spec.calls:
            mine, ref = expected.mistake(mistake, call), expected.reference(call)
            if mine is None or ref is None or not ref.ok:
                continue
            from autograder import checks

            if not mine.ok or not checks.get(call.check).judge(mine.value, ref.value, hidden=False).passed:
                differs = True
        assert differs, f"catalogue entry {mistake.id} behaves like the solution"


def test_every_catalogued_mistake_runs_so_that_it_can_be_named(grader):
    """A catalogue entry whose code raises in every check (an API that changed, say) can never be named: a
    diagnosis needs the wrong implementation's own result."""
    expected = grader.prepare()
    for mistake in MISTAKES.values():
        results = [expected.mistake(mistake, call) for call in grader.spec.calls]
        assert any(r is not None and r.ok for r in results), (
            f"{mistake.id} fails every check: {next((r.error for r in results if r is not None), None)}"
        )


def finding_kinds(result):
    return {f["kind"] for f in result["extra_data"]["findings"]}


def test_not_json_completes_with_a_finding(grader, tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text("{not json")
    result = graded(grader, path)
    assert result["score"] == 0 and result["max_score"] == 14 and finding_kinds(result) == {"not_json"}
    assert len(result["tests"]) == 15


def test_wrong_version_completes_with_a_finding(grader, tmp_path):
    nb = notebook(SOLUTION)
    nb["nbformat"] = 3
    path = tmp_path / "v3.ipynb"
    path.write_text(json.dumps(nb))
    result = graded(grader, path)
    assert result["score"] == 0 and finding_kinds(result) == {"wrong_format_version"}


def test_missing_answer_cell_costs_only_its_checks(grader, tmp_path):
    nb = notebook(SOLUTION)
    nb["cells"].remove(cell(nb, "decoder_block"))
    path = tmp_path / "missing.ipynb"
    path.write_text(json.dumps(nb))
    result = graded(grader, path)
    scores = by_grade_id(result)
    assert scores["encoder_block_shapes"] == 2 and scores["encoder_block_structure"] == 3
    assert scores["decoder_block_shapes"] == 0 and scores["reconstruction_quality"] == 0
    assert "missing_answer_cell" in finding_kinds(result)
    assert "define_decoder_block is not defined" in result["tests"][7]["output"]


def test_edited_locked_test_cell_is_reported_and_ignored(grader, tmp_path):
    nb = notebook(SOLUTION)
    cell(nb, "decoder_block_shapes")["source"] = "print('all good')\n"
    cell(nb, "decoder_block_shapes")["metadata"]["nbgrader"]["points"] = 50
    path = tmp_path / "edited.ipynb"
    path.write_text(json.dumps(nb))
    result = graded(grader, path)
    assert result["score"] == result["max_score"] == 14  # graded from the source, never more points
    assert {"locked_cell_edited", "cell_metadata_changed"} <= finding_kinds(result)


def test_duplicated_answer_cell(grader, tmp_path):
    nb = notebook(SOLUTION)
    dup = json.loads(json.dumps(cell(nb, "encoder_block")))
    dup["id"] = "dup"
    dup["source"] = MISTAKES["encoder_no_pooling"].code
    nb["cells"].insert(nb["cells"].index(cell(nb, "encoder_block")) + 1, dup)
    path = tmp_path / "dup.ipynb"
    path.write_text(json.dumps(nb))
    result = graded(grader, path)
    assert "duplicated_cell" in finding_kinds(result)
    assert by_grade_id(result)["encoder_block_shapes"] == 0  # the last copy is the one graded


HOSTILE_TOP = {
    "infinite_loop": ("while True:\n    pass\n", "time limit"),
    "memory_hog": ("x = bytearray(60 * 1024**3)\n", "MemoryError"),
    "sys_exit": ("import sys\nsys.exit(0)\n", "SystemExit"),
    "os_exit": ("import os\nos._exit(0)\n", "stopped the worker"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TOP))
def test_hostile_encoder_cell_costs_only_the_encoder(grader, tmp_path, case):
    code, reason = HOSTILE_TOP[case]
    src = "".join(cell(notebook(SOLUTION), "encoder_block")["source"])
    result = graded(grader, with_answer(SOLUTION, tmp_path / f"{case}.ipynb", "encoder_block", code + src))
    scores = by_grade_id(result)
    assert scores["decoder_block_shapes"] == 2 and scores["decoder_block_structure"] == 3, scores
    assert scores["encoder_block_shapes"] == 0 and scores["reconstruction_quality"] == 0
    messages = " ".join(f["message"] for f in result["extra_data"]["findings"])
    assert reason in messages, messages
    assert result["execution_time"] < 20 + 60 * 2 + 30  # item limit, retries and training, with margin


def test_under_jax_the_solution_gets_full_marks_and_the_release_zero(grader):
    """The same notebooks, checks and thresholds on Keras' JAX backend (the expectations are computed on JAX too;
    the catalogue is left out to keep this short: the slow set runs it)."""
    pytest.importorskip("jax")
    from dataclasses import replace

    on_jax = replace(grader.with_backend("jax"), mistakes=[])
    solution, release = graded(on_jax, SOLUTION), graded(on_jax, RELEASE)
    assert solution["score"] == solution["max_score"] == 14, solution["tests"]
    assert solution["extra_data"]["environment"]["backend"] == "jax"
    assert release["score"] == 0 and release["max_score"] == 14


def test_a_backend_that_the_kit_does_not_know_is_an_error_naming_the_choices(grader, monkeypatch):
    from autograder.errors import KitError

    monkeypatch.setenv("AUTOGRADER_BACKEND", "theano")
    with pytest.raises(KitError, match="'theano' \\(AUTOGRADER_BACKEND\\).*tensorflow, jax, torch"):
        grader.with_backend(None)
    assert grader.with_backend("jax").backend == "jax"  # an explicit choice wins over the environment


@pytest.fixture(scope="module")
def jax_grader(grader):
    pytest.importorskip("jax")
    return grader.with_backend("jax")


@pytest.mark.slow
@pytest.mark.parametrize("mistake", sorted(PARTIAL))
def test_under_jax_each_mistake_keeps_its_points_and_its_diagnosis(jax_grader, tmp_path, mistake):
    m = MISTAKES[mistake]
    result = graded(jax_grader, with_answer(SOLUTION, tmp_path / f"{mistake}.ipynb", m.grade_id, m.code))
    scores = by_grade_id(result)
    scores.pop("reconstruction_quality")
    want = dict(PARTIAL[mistake])
    want.pop("reconstruction_quality")
    assert scores == pytest.approx(want)
    assert m.says in {t["extra_data"].get("diagnosis") for t in result["tests"] if t["status"] == "failed"}
