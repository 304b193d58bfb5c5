"""Submitted weights (docs/student-weights.md): the model the student trained, loaded into the model their code
builds and measured on held-out data against the thresholds of the recipe course.yaml names for submitted weights.

The fast tests need no TensorFlow: the weights file vetted in the grader's process, course.yaml's choices, which
checks count, the report's hash flags, collecting and Gradescope's upload. The graded ones use a copy of the course
whose tiny cpu profile is both the retraining recipe and the recipe of submitted weights, calibrated once."""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, TINY, copy_course, finding_kinds

from autograder.checks import get
from autograder.checks.quality.submitted import is_submitted, mismatch
from autograder.checks.quality.weights_file import (
    HDF5_SIGNATURE,
    NO_WEIGHTS,
    WEIGHTS_REFUSED,
    code_in_config,
    find_weights,
    read_weights,
)
from autograder.config import load_course
from autograder.errors import KitError
from autograder.notebook import load_spec
from autograder.reports.reading import GradedSubmission
from autograder.reports.weights import REFERENCE, SHARED, flag_weights, reference_hashes, weights_csv
from autograder.results import SubmissionResult

A = "autoencoder"
H5 = HDF5_SIGNATURE + b"\0" * 56  # the start of an HDF5 file: enough for the grader's vetting, which never parses


def keras_archive(config: dict, weights: bytes = H5) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("metadata.json", "{}")
        z.writestr("model.weights.h5", weights)
    return out.getvalue()


LAMBDA = {
    "class_name": "Functional",
    "config": {
        "layers": [
            {"class_name": "InputLayer", "config": {"name": "x"}},
            {
                "module": "keras.layers",
                "class_name": "Lambda",
                "config": {"function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAA"}}},
            },
        ]
    },
}


# ------------------------------------------------------------------------------------------ the file, vetted


def test_no_file_is_a_finding_that_names_the_file(tmp_path):
    found = find_weights(tmp_path, A)
    assert not found.usable and found.kind == NO_WEIGHTS and found.sha256 is None
    assert "no trained weights submitted" in found.problem and f"{A}.weights.h5" in found.problem


def test_hdf5_weights_are_used_as_they_are_and_hashed(tmp_path):
    (tmp_path / f"{A}.weights.h5").write_bytes(H5)
    found = find_weights(tmp_path, A)
    assert found.usable and found.weights == H5 and found.sha256 == hashlib.sha256(H5).hexdigest()
    assert found.summary() == {"file": f"{A}.weights.h5", "sha256": found.sha256, "bytes": len(H5), "used": True}


def test_a_corrupt_file_is_refused_with_its_hash(tmp_path):
    (tmp_path / f"{A}.weights.h5").write_bytes(b"\x13\x37" * 2048)
    found = find_weights(tmp_path, A)
    assert found.kind == WEIGHTS_REFUSED and "not a Keras weights file" in found.problem and found.sha256


def test_a_2_gb_file_is_refused_before_a_byte_is_read(tmp_path, monkeypatch):
    big = tmp_path / f"{A}.weights.h5"
    with open(big, "wb") as fh:  # sparse: 2 GB that take no disk
        fh.truncate(2 * 2**30)
    opened = []
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    found = find_weights(tmp_path, A)
    assert found.kind == WEIGHTS_REFUSED and "2,048 MB" in found.problem and found.sha256 is None
    assert not [a for a in opened if str(a[0]) == str(big)], "the file was opened"


def test_a_link_is_refused(tmp_path):
    (tmp_path / "elsewhere.h5").write_bytes(H5)
    (tmp_path / f"{A}.weights.h5").symlink_to(tmp_path / "elsewhere.h5")
    assert "symbolic link" in find_weights(tmp_path, A).problem


def test_a_keras_file_with_a_lambda_layer_is_refused_and_nothing_of_it_reaches_a_worker(tmp_path):
    (tmp_path / f"{A}.keras").write_bytes(keras_archive(LAMBDA))
    found = find_weights(tmp_path, A)
    assert not found.usable and found.weights is None and found.kind == WEIGHTS_REFUSED
    assert "holds code (a Lambda layer)" in found.problem
    assert code_in_config({"a": [{"b": {"class_name": "__lambda__"}}]}) == "a serialized __lambda__"


def test_a_clean_keras_file_gives_its_weights_alone(tmp_path):
    config = {"class_name": "Functional", "config": {"layers": [{"class_name": "Dense", "config": {}}]}}
    (tmp_path / f"{A}.keras").write_bytes(keras_archive(config, H5 + b"weights"))
    found = find_weights(tmp_path, A)
    assert found.usable and found.weights == H5 + b"weights" and found.name == f"{A}.keras"


def test_a_keras_file_that_unpacks_past_the_limit_is_refused(tmp_path):
    path = tmp_path / f"{A}.keras"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("model.weights.h5", H5 + b"\0" * (3 * 2**20))  # compresses to almost nothing
    path.write_bytes(out.getvalue())
    assert "unpacks to more than" in read_weights(path, max_bytes=2**20).problem


def test_keras_mismatch_errors_become_one_sentence():
    text = (
        "A total of 2 objects could not be loaded. ... `variable.assign(value)` must match. variable.shape=(1568, 2), "
        "Received: value.shape=(1568, 16). Target variable: <Variable path=latent/kernel, shape=(1568, 2), ..."
    )
    assert mismatch(text) == "latent/kernel has shape (1568, 2) in your model and (1568, 16) in the file"
    assert "layer 'conv2d_8' has 2" in mismatch("Layer 'conv2d_8' expected 2 variables, but received 0 variables")


# ------------------------------------------------------------------------------------------ course.yaml, counting


def _course_with(tmp_path, **quality) -> Path:
    tmp_path.mkdir(parents=True)
    root = copy_course(tmp_path, count=("retrain", "submitted"))
    config = yaml.safe_load((root / "course.yaml").read_text())
    config["assignments"][A]["quality"].update(quality)
    (root / "course.yaml").write_text(yaml.safe_dump(config))
    return root


def test_course_yaml_says_which_quality_checks_count_and_the_recipe_of_submitted_weights(tmp_path):
    from autograder.files import read_thresholds

    shipped = load_course(ROOT)
    assert shipped.assignment(A).count == ("retrain", "submitted")
    for name in shipped.assignments:
        assert shipped.assignment(name).submitted.name == "gpu"
        if "submitted" in shipped.assignment(name).count:  # a counted check has the thresholds it is judged by
            assert "gpu" in read_thresholds(shipped.paths, name), name
    with pytest.raises(KitError, match=r"quality\.count"):
        load_course(_course_with(tmp_path / "a", count=["retrain", "guess"]))
    with pytest.raises(KitError, match=r"quality\.submitted_profile.*cpu, gpu"):
        load_course(_course_with(tmp_path / "b", submitted_profile="colab"))


def test_each_source_notebook_grades_the_submitted_model_and_trains_it_with_the_recipe_it_is_judged_by():
    import ast

    course = load_course(ROOT)
    for name in course.assignments:
        spec = load_spec(course.source_notebook(name), name)
        submitted = [c for c in spec.training_calls if is_submitted(get(c.check))]
        assert len(submitted) == 1 and submitted[0].grade_id == "submitted_weights"
        cell = next(c for c in spec.cells if c.grade_id == "save_trained_weights")
        assert cell.kind == "heavy" and f'Path("{name}.weights.h5")' in cell.code
        (assign,) = [
            n
            for n in ast.walk(ast.parse(cell.code))
            if isinstance(n, ast.Assign) and "FULL_RECIPE" in ast.dump(n.targets[0])
        ]
        written = ast.literal_eval(assign.value)
        recipe = course.assignment(name).submitted.recipe()
        for key, value in written.items():
            want = recipe["extra"].get(key) if key in ("beta", "image_size") else recipe[key]
            assert want == (list(value) if isinstance(value, tuple) else value), (name, key)


def test_only_the_counted_quality_checks_are_graded():
    from autograder.grading.plans import counted

    spec = load_spec(ROOT / "source" / A / f"{A}.ipynb", A)
    both = counted(spec, ("retrain", "submitted"))
    retrain, submitted = counted(spec, ("retrain",)), counted(spec, ("submitted",))
    assert both.max_score == spec.max_score == retrain.max_score + 4 == submitted.max_score + 4
    assert [c.check for c in retrain.training_calls] == ["reconstruction_quality"]
    assert [c.check for c in submitted.training_calls] == ["submitted_reconstruction_quality"]
    assert len(submitted.value_calls) == len(spec.value_calls)


def test_without_usable_weights_the_plan_holds_no_probe_that_loads_them():
    from autograder.grading.plans import probes

    course = load_course(ROOT)
    spec = load_spec(ROOT / "source" / A / f"{A}.ipynb", A)
    profiles = course.assignment(A).profiles
    none = probes(spec, run="student", profile=profiles["cpu"], seed=0)
    some = probes(spec, run="student", profile=profiles["cpu"], seed=0, submitted_profile=profiles["gpu"])
    assert not [p for p in none if p.check.startswith("submitted_")]
    (loads,) = [p for p in some if p.check.startswith("submitted_")]
    assert loads.args["recipe"] == profiles["gpu"].recipe() and loads.args["weights"] == "submitted.weights.h5"


# ------------------------------------------------------------------------------------------ the report's flags


def _graded(student: str, sha: str | None) -> GradedSubmission:
    result = SubmissionResult(A, student, [], [], 18.0, 1.0, "0", weights=None if sha is None else {"sha256": sha})
    return GradedSubmission(student, SubmissionResult.from_dict(result.to_dict()))


def test_the_report_flags_the_same_weights_twice_and_the_reference_weights(tmp_path):
    root = copy_course(tmp_path)
    reference = reference_hashes(root, A)
    published = hashlib.sha256((root / "reference_weights" / A / f"{A}.reference.weights.h5").read_bytes())
    assert published.hexdigest() in reference
    subs = [_graded("ada", "a" * 64), _graded("bob", "a" * 64), _graded("cyd", published.hexdigest())]
    subs += [_graded("dan", "d" * 64), _graded("eve", None)]
    flags = flag_weights(subs, reference)
    assert {(f.student, f.kind) for f in flags} == {("ada", SHARED), ("bob", SHARED), ("cyd", REFERENCE)}
    assert "bob" in next(f.message for f in flags if f.student == "ada")
    table = weights_csv(subs, flags).splitlines()
    assert table[0] == "student,weights_sha256,flags" and f"dan,{'d' * 64}," in table and len(table) == 5


# ------------------------------------------------------------------------------------------ where the file travels


def test_collect_places_a_canvas_students_weights_beside_the_notebook(tmp_path):
    from autograder.collect import collect

    (tmp_path / "course").mkdir()
    root = copy_course(tmp_path / "course")
    notebook = (ROOT / "release" / A / f"{A}.ipynb").read_bytes()
    download = tmp_path / "canvas.zip"
    with zipfile.ZipFile(download, "w") as z:
        z.writestr(f"lovelaceada_101_9001_{A}.ipynb", notebook)
        z.writestr(f"lovelaceada_101_9002_{A}.weights-1.h5", H5)
        z.writestr(f"turingalan_102_9003_{A}.weights.h5", H5)  # no notebook from this student
    report = collect(download, root, A)
    folder = root / "submitted" / "lovelaceada" / A
    assert (folder / f"{A}.ipynb").read_bytes() == notebook and (folder / f"{A}.weights.h5").read_bytes() == H5
    assert [n for n, _ in report.unplaced] == [f"turingalan_102_9003_{A}.weights.h5"]
    assert "trained weights placed" in str(report)


def test_gradescope_takes_the_uploaded_weights_by_name_or_alone(tmp_path):
    from autograder.gradescope import find_weights_upload

    assert find_weights_upload(tmp_path, A) == (None, "")
    (tmp_path / "my_model.weights.h5").write_bytes(H5)
    chosen, note = find_weights_upload(tmp_path, A)
    assert chosen == tmp_path / "my_model.weights.h5" and f"graded as {A}.weights.h5" in note
    (tmp_path / "other.h5").write_bytes(H5)
    assert find_weights_upload(tmp_path, A)[0] is None
    (tmp_path / f"{A}.weights.h5").write_bytes(H5)
    assert find_weights_upload(tmp_path, A) == (tmp_path / f"{A}.weights.h5", "")


# ------------------------------------------------------------------------------------------ graded, end to end


@pytest.fixture(scope="module")
def weights_course(tmp_path_factory):
    """A copy of the course whose autoencoder's cpu profile (TINY) judges submitted weights, calibrated once."""
    from autograder.calibrate import calibrate

    root = copy_course(tmp_path_factory.mktemp("weights-course"), count=("retrain", "submitted"))
    config = yaml.safe_load((root / "course.yaml").read_text())
    config["assignments"][A]["quality"].update(profiles={"cpu": dict(TINY), "gpu": dict(TINY)}, submitted_profile="cpu")
    config["worker"]["wall_s"] = 30
    (root / "course.yaml").write_text(yaml.safe_dump(config))
    calibrate(load_course(root), A, profile="cpu", seeds=1, log=lambda *_: None)
    return load_course(root)


@pytest.fixture(scope="module")
def trained(weights_course, tmp_path_factory):
    """The solution, and beside it its weights trained by `autograder train` with the cpu recipe."""
    from autograder.train import train_notebook

    folder = tmp_path_factory.mktemp("ada")
    shutil.copy(ROOT / "solutions" / A / f"{A}.ipynb", folder / f"{A}.ipynb")
    done = train_notebook(folder / f"{A}.ipynb", course=weights_course, assignment=A, seed=7, log=lambda *_: None)
    assert done.path == folder / f"{A}.weights.h5" and done.profile == "cpu" and done.images == 3 * 2500
    assert done.seed == 7  # not the calibration's seed 0: a model of its own, judged by the thresholds' margin
    return folder / f"{A}.ipynb"


def test_train_draws_a_seed_per_run_so_it_never_hands_back_the_reference(weights_course, tmp_path):
    """A student who trains the reference solution's code gets a model of their own, not the reference's bytes
    (which the class report would flag as handed in)."""
    from autograder.reports.weights import reference_hashes
    from autograder.train import train_notebook

    hashes = set()
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        shutil.copy(ROOT / "solutions" / A / f"{A}.ipynb", tmp_path / name / f"{A}.ipynb")
        done = train_notebook(tmp_path / name / f"{A}.ipynb", course=weights_course, assignment=A, log=lambda *_: None)
        hashes.add(done.sha256)
    assert len(hashes) == 2
    assert not hashes & set(reference_hashes(weights_course.root, A))


@pytest.fixture(scope="module")
def submitted_only(weights_course):
    """The grader with the submitted-weights check as the only quality check (no retraining: fast)."""
    from autograder.grading import Grader
    from autograder.grading.plans import counted

    grader = Grader.create(weights_course, A, profile="cpu")
    return dataclasses.replace(grader, spec=counted(grader.spec, ("submitted",)))


def _check(result, grade_id="submitted_weights"):
    (check,) = [c for c in result.checks if c.grade_id == grade_id]
    return check


def test_the_solution_with_its_trained_weights_gets_full_marks_and_its_hash_recorded(weights_course, trained):
    from autograder.grading import Grader

    result = Grader.create(weights_course, A, profile="cpu").grade(trained, student="ada")
    assert result.score == result.max_score == 18, [c.message for c in result.checks if not c.passed]
    sha = hashlib.sha256((trained.parent / f"{A}.weights.h5").read_bytes()).hexdigest()
    assert result.to_dict()["extra_data"]["weights"]["sha256"] == sha == result.weights_sha256
    assert "of the model you trained and submitted" in _check(result).message


def test_a_dask_worker_grades_the_weights_submitted_beside_the_notebook(weights_course, trained, tmp_path):
    """A cluster's worker grades a copy of the notebook in a folder of its own: the weights beside the submitted
    notebook went unread there, and a correct submission lost that check's points on a cluster alone."""
    from distributed import LocalCluster

    from autograder.batch import grade_paths

    folder = tmp_path / "submitted" / "ada" / A
    shutil.copytree(trained.parent, folder)
    got = {}
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        for where, how in (("cluster", {"scheduler": cluster.scheduler_address}), ("here", {"workers": 1})):
            summary = grade_paths(
                weights_course,
                [tmp_path / "submitted"],
                assignment=A,
                out=tmp_path / where,
                profile="cpu",
                log=lambda *_: None,
                progress=False,
                **how,
            )
            assert summary.graded == 1 and summary.errors == []
            got[where] = json.loads((tmp_path / where / "ada" / A / "results.json").read_text())
    raw = (folder / f"{A}.weights.h5").read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    for result in got.values():
        assert result["score"] == 18, [t["output"] for t in result["tests"]]
        weights = {"file": f"{A}.weights.h5", "sha256": sha, "bytes": len(raw), "used": True}
        assert result["extra_data"]["weights"] == weights
    assert [(t["name"], t["score"]) for t in got["cluster"]["tests"]] == [
        (t["name"], t["score"]) for t in got["here"]["tests"]
    ]


def test_no_weights_file_costs_that_check_alone(submitted_only, tmp_path):
    shutil.copy(ROOT / "solutions" / A / f"{A}.ipynb", tmp_path / f"{A}.ipynb")
    result = submitted_only.grade(tmp_path / f"{A}.ipynb", student="bob")
    assert NO_WEIGHTS in finding_kinds(result.to_dict())
    assert result.score == result.max_score - 4 and "no trained weights submitted" in _check(result).message
    assert all(c.passed for c in result.checks if c.grade_id != "submitted_weights")


def test_untrained_weights_get_zero_on_that_check(submitted_only, tmp_path, trained):
    """The solution's model saved before any training, and the release notebook (whose blocks are stubs)."""
    from autograder.calibrate import run_source

    model = run_source(submitted_only.spec)["build_autoencoder"](latent_dim=TINY["latent_dim"], filters=TINY["filters"])
    for name, notebook in (("sol", ROOT / "solutions"), ("rel", ROOT / "release")):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(notebook / A / f"{A}.ipynb", folder / f"{A}.ipynb")
        model.save_weights(folder / f"{A}.weights.h5")
        check = _check(submitted_only.grade(folder / f"{A}.ipynb", student=name))
        assert check.score == 0 and not check.passed, check.message


def test_weights_of_another_architecture_are_a_finding_that_names_the_mismatch(submitted_only, tmp_path):
    from autograder.calibrate import run_source

    build = run_source(submitted_only.spec)["build_autoencoder"]
    shutil.copy(ROOT / "solutions" / A / f"{A}.ipynb", tmp_path / f"{A}.ipynb")
    build(latent_dim=2, filters=TINY["filters"]).save_weights(tmp_path / f"{A}.weights.h5")
    check = _check(submitted_only.grade(tmp_path / f"{A}.ipynb", student="cyd"))
    message = check.message
    assert check.score == 0 and "do not fit the model your code builds" in message and "latent_dim=16" in message
    assert "(16, 2)" in message or ", 2)" in message, message


def test_a_refused_file_is_a_finding_and_nothing_of_it_is_loaded(submitted_only, tmp_path):
    shutil.copy(ROOT / "solutions" / A / f"{A}.ipynb", tmp_path / f"{A}.ipynb")
    (tmp_path / f"{A}.keras").write_bytes(keras_archive(LAMBDA))
    result = submitted_only.grade(tmp_path / f"{A}.ipynb", student="dan")
    assert WEIGHTS_REFUSED in finding_kinds(result.to_dict()) and "Lambda" in _check(result).message
    assert result.weights is not None and result.weights["used"] is False and result.weights["sha256"]


def test_autograder_report_writes_the_flags_into_the_summary_and_weights_csv(tmp_path):
    from test_reports import make_course

    from autograder.reports import write_reports

    root = make_course(tmp_path / "course", students=("ada", "bo", "cy"), manual={})
    reference = root / "reference_weights" / A / f"{A}.reference.weights.h5"
    reference.write_bytes(H5 + b"reference")
    shas = {"ada": "a" * 64, "bo": "a" * 64, "cy": hashlib.sha256(reference.read_bytes()).hexdigest()}
    for student, sha in shas.items():
        path = root / "autograded" / student / A / "results.json"
        data = json.loads(path.read_text())
        data["extra_data"]["weights"] = {"file": f"{A}.weights.h5", "sha256": sha, "bytes": 9, "used": True}
        path.write_text(json.dumps(data))
    written = write_reports(root)
    table = (root / "reports" / A / "weights.csv").read_text()
    assert root / "reports" / A / "weights.csv" in written
    assert f"ada,{'a' * 64},{SHARED}" in table and f"cy,{shas['cy']},{REFERENCE}" in table
    summary = (root / "reports" / A / "summary.html").read_text()
    assert SHARED in summary and REFERENCE in summary and "reference_weights/autoencoder/" in summary
