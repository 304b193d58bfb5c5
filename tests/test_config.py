from pathlib import Path

import pytest
import yaml

from autograder.config import load_course
from autograder.errors import KitError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, mutate) -> Path:
    config = yaml.safe_load((ROOT / "course.yaml").read_text())
    mutate(config)
    (tmp_path / "course.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def test_the_course_file_loads():
    course = load_course(ROOT)
    assert "autoencoder" in course.assignments
    cpu = course.assignment("autoencoder").profiles["cpu"]
    assert cpu.latent_dim == 16 and cpu.filters == (16, 32)
    assert course.limits["memory_mb"] >= 2048


@pytest.mark.parametrize("mutate, key", [
    (lambda c: c.update(colour="blue"), "'colour'"),
    (lambda c: c["worker"].update(walltime=3), "'worker.walltime'"),
    (lambda c: c.pop("course"), "'course'"),
    (lambda c: c["assignments"]["autoencoder"]["quality"]["profiles"]["cpu"].pop("epochs"),
     "'assignments.autoencoder.quality.profiles.cpu.epochs'"),
    (lambda c: c["assignments"]["autoencoder"]["quality"]["profiles"].pop("gpu"),
     "'assignments.autoencoder.quality.profiles.gpu'"),
])
def test_unknown_or_missing_keys_are_named_with_the_file(tmp_path, mutate, key):
    root = write(tmp_path, mutate)
    with pytest.raises(KitError) as err:
        load_course(root)
    assert key in str(err.value) and str(root / "course.yaml") in str(err.value)


def test_wrong_types_and_choices_are_named(tmp_path):
    with pytest.raises(KitError, match=r"'worker.memory_mb' must be a int"):
        load_course(write(tmp_path, lambda c: c["worker"].update(memory_mb="lots")))
    with pytest.raises(KitError, match=r"'data.mnist_source' is 'web'"):
        load_course(write(tmp_path, lambda c: c["data"].update(mnist_source="web")))


def test_not_yaml_and_no_file(tmp_path):
    (tmp_path / "course.yaml").write_text("course: [unclosed\n")
    with pytest.raises(KitError, match="not valid YAML"):
        load_course(tmp_path)
    with pytest.raises(KitError, match="no course.yaml"):
        load_course(tmp_path / "elsewhere")


def test_unknown_assignment_lists_the_known_ones():
    with pytest.raises(KitError, match="lists: autoencoder"):
        load_course(ROOT).assignment("gan")
