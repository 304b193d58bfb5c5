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


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda c: c.update(colour="blue"), "'colour'"),
        (lambda c: c["worker"].update(walltime=3), "'worker.walltime'"),
        (lambda c: c.pop("course"), "'course'"),
        (
            lambda c: c["assignments"]["autoencoder"]["quality"]["profiles"]["cpu"].pop("epochs"),
            "'assignments.autoencoder.quality.profiles.cpu.epochs'",
        ),
        (
            lambda c: c["assignments"]["autoencoder"]["quality"]["profiles"].pop("gpu"),
            "'assignments.autoencoder.quality.profiles.gpu'",
        ),
    ],
)
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
        load_course(ROOT).assignment("gans")


def _extra(assignment: str, profile: str = "cpu"):
    return lambda c: c["assignments"][assignment]["quality"]["profiles"][profile]["extra"]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda c: _extra("vae")(c).update(betta=2.0),
            r"unknown key 'assignments\.vae\.quality\.profiles\.cpu\.extra\.betta'",
        ),
        (
            lambda c: _extra("vae", "gpu")(c).update(prior_samples="many"),
            r"'assignments\.vae\.quality\.profiles\.gpu\.extra\.prior_samples' must be a int, got 'many'",
        ),
        (
            lambda c: _extra("cvae")(c).update(beta=True),
            r"'assignments\.cvae\.quality\.profiles\.cpu\.extra\.beta' must be a float",
        ),
        (
            lambda c: _extra("cvae")(c).update(control_attributes="Smiling"),
            r"'assignments\.cvae\.quality\.profiles\.cpu\.extra\.control_attributes' must be a list of str",
        ),
        (
            lambda c: _extra("cvae")(c).update(control_attributes=["Smilling"]),
            r"'assignments\.cvae\.quality\.profiles\.cpu\.extra\.control_attributes' "
            r"has 'Smilling'; use one of Smiling",
        ),
        (
            lambda c: c["assignments"]["autoencoder"]["quality"]["profiles"]["cpu"].update(extra={"confidance": 0.5}),
            r"unknown key 'assignments\.autoencoder\.quality\.profiles\.cpu\.extra\.confidance'",
        ),
    ],
)
def test_unknown_or_mistyped_extra_settings_are_named_with_the_file(tmp_path, mutate, message):
    root = write(tmp_path, mutate)
    with pytest.raises(KitError, match=message) as err:
        load_course(root)
    assert str(root / "course.yaml") in str(err.value)


def test_extra_settings_are_declared_by_the_training_checks_that_read_them():
    """Every extra key of course.yaml is declared by a training check; each check fills in its own defaults and
    ignores the keys that another training check reads."""
    from autograder import checks

    course = load_course(ROOT)
    recipe = course.assignment("vae").profiles["cpu"].recipe()
    assert recipe["extra"]["beta"] == 1.0 and "prior_seed" not in recipe["extra"]  # as written: no defaults added
    vae = checks.get("vae_quality").settings(recipe)
    assert vae["prior_seed"] == 0 and vae["prior_samples"] == 1000 and "control_images" not in vae
    cvae = checks.get("cvae_quality").settings({"extra": {"image_size": 16, "prior_samples": 5}})
    assert cvae["image_size"] == 16 and cvae["control_attributes"] is None and "prior_samples" not in cvae
    assert checks.get("cvae_quality").dataset_options(course.assignment("cvae").profiles["cpu"].recipe()) == {
        "image_size": 32
    }
    assert checks.get("reconstruction_quality").settings(recipe) == {}
    # strict: only the keys the named checks declare
    with pytest.raises(KitError, match=r"unknown key 'profile\.extra\.beta'"):
        checks.validate_extra({"beta": 1.0}, where="profile.extra", names=["reconstruction_quality"])
    assert isinstance(checks.get("vae_quality"), checks.TrainingCheck)
    assert not isinstance(checks.get("sampler_shape"), checks.TrainingCheck)
